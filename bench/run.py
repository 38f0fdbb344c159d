"""Benchmark wsgiloop against its peers with wrk: gunicorn (sync, gthread), waitress,
Tornado, granian, bjoern, meinheld, fastwsgi, socketify, uWSGI, and a C epoll responder
(the "C ceiling").

Run from anywhere (the servers always run with the repository root as cwd):

    python bench/run.py                       # everything, 10 s per run
    python bench/run.py --duration 3 --servers gunicorn-sync,wsgiloop --scenarios hello
    python bench/run.py --install             # install the peers first (pip, apt-get)
    python bench/run.py --repeat 2 --json bench/results/latest.json   # median of 2 runs

Every server runs ONE worker process pinned to one CPU (``taskset -c 0``) and wrk runs
with one thread pinned to another (``taskset -c 1``). Each (scenario, server) pair gets
a fresh server on a free port; the whole process group is killed afterwards.

The exception is ``hello-2w``: two worker processes per server, NOT pinned to one core
(``taskset -c 0,1``, the cores wrk uses too), each writing its pid to an access log per
request so the report can show how evenly the requests spread over the workers.
See bench/README.md for what is measured and how to read the table.

This script runs the benchmark (servers, wrk, sampling, flags); the servers and scenarios
are in bench/catalogue.py, the /proc readings in bench/procstats.py and the markdown
report in bench/report.py.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py`: make wsgiloop/bench importable
    sys.path.insert(0, str(ROOT))

from bench.catalogue import (  # noqa: E402
    BENCH,
    HOST,
    SCENARIOS,
    SERVERS,
    Scenario,
    Server,
    ceiling_binary,
    multi_cpus,
    not_applicable,
)
from bench.procstats import (  # noqa: E402
    OtherCpu,
    connections_per_process,
    group_alive,
    listen_overflows,
    proc_stat,
    process_tree,
    processes_named,
    rss_kib,
    tcp_connections,
)
from bench.report import (  # noqa: E402
    Run,
    fmt_latency,
    fmt_spread,
    median_run,
    multi_worker_caveat,
    render,
    to_json,
)

RESULT_MARK = "WSGILOOP_BENCH_RESULT "
OTHER_CPU_LIMIT = 0.2  # CPUs used by other processes during a run that flag it

APT_WRK = "apt-get install -y wrk"
APT_TASKSET = "apt-get install -y util-linux"
PIP_BENCH = "python bench/run.py --install"
PIP_SELF = "pip install -e ."
# What --install puts in place. System packages: wrk, taskset, gcc (the C ceiling) and
# libev-dev (bjoern is built from source against it).
APT_PACKAGES = ["wrk", "util-linux", "gcc", "libev-dev"]
# meinheld 1.0.2 pins greenlet<0.5, which does not build on Python >= 3.11; the bench
# extra installs a current greenlet, meinheld itself goes in without its pins.
PIP_NO_DEPS = ["meinheld"]


# --------------------------------------------------------------------------- processes


_LIVE: list[subprocess.Popen] = []


def spawn(argv: list[str], log, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT, env=env, start_new_session=True)
    _LIVE.append(proc)
    return proc


def kill_tree(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group (and any descendant that left it), then SIGKILL leftovers."""
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    tree = process_tree(proc.pid) if proc.poll() is None else {}
    strays = {pid: start for pid, start in tree.items()
              if (st := proc_stat(pid)) is not None and st[1] != pgid}

    def signal_all(sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid, start in strays.items():
            st = proc_stat(pid)
            if st is not None and st[2] == start:  # still the same process, not a reused pid
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def settled() -> bool:
        return proc.poll() is not None and not group_alive(pgid) and not any(
            (st := proc_stat(pid)) is not None and st[2] == start for pid, start in strays.items())

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not settled():
        time.sleep(0.05)
    if not settled():
        signal_all(signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if proc in _LIVE:
        _LIVE.remove(proc)


def kill_all_live() -> None:
    for proc in list(_LIVE):
        kill_tree(proc, grace=2.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_request(port: int, scenario: Scenario | None = None,
                 timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if scenario is None:
            conn.request("GET", "/")
        else:
            conn.request(scenario.method, "/", body=scenario.body or None,
                         headers=dict(scenario.headers))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until_serving(proc: subprocess.Popen, port: int, timeout: float,
                       scenario: Scenario | None = None) -> str | None:
    """None once the server answers an HTTP request (the scenario's own request, so that
    e.g. the echo app is not probed with a body-less GET), else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before answering"
        try:
            http_request(port, scenario, timeout=1.0)
            return None
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    return f"did not answer within {timeout:.0f}s ({last})"


def sanity_check(port: int, scenario: Scenario) -> str | None:
    """None if one request gets the expected response, else what was wrong."""
    try:
        status, body = http_request(port, scenario, timeout=10.0)
    except (OSError, http.client.HTTPException) as exc:
        return f"check request failed: {type(exc).__name__}: {exc}"
    if status != 200:
        return f"check got HTTP {status}"
    if scenario.expect_body is not None and body != scenario.expect_body:
        return f"check got a wrong body ({len(body)} bytes: {body[:40]!r})"
    if scenario.expect_length is not None and len(body) != scenario.expect_length:
        return f"check got {len(body)} bytes, expected {scenario.expect_length}"
    return None


# --------------------------------------------------------------------------- wrk

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%s{\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"
    .. "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d,"
    .. "\"p50\":%d,\"p90\":%d,\"p99\":%d,\"max\":%d,\"mean\":%.1f}\n",
    "__MARK__", summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def lua_script(scenario: Scenario) -> str:
    lines = [f'wrk.method = "{scenario.method}"']
    if scenario.body:
        # The body is plain ASCII filler; string.rep keeps the script small.
        assert scenario.body == b"x" * len(scenario.body)
        lines.append(f'wrk.body = string.rep("x", {len(scenario.body)})')
    for name, value in scenario.headers:
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    return "\n".join(lines) + "\n" + LUA_DONE.replace("__MARK__", RESULT_MARK)


def run_wrk(args, scenario: Scenario, port: int, duration: int, lua_path: str,
            server_pids=None, run: Run | None = None) -> dict | None:
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{scenario.connections}",
           f"-d{duration}s", f"--timeout={args.wrk_timeout}", "--latency", "-s", lua_path,
           f"http://{HOST}:{port}/"]
    samples: list[tuple[float, int, tuple[int, int] | None, dict[int, int] | None, int]] = []
    stop = threading.Event()

    foreign: set[int] = set()

    def sampler() -> None:
        n = 0
        while not stop.wait(0.25):
            tree = server_pids()
            conns = tcp_connections(port) if scenario.report_connections else None
            per_proc = (connections_per_process(tree, port) if scenario.workers > 1
                        else None)
            biggest = max((rss_kib([pid]) for pid in tree), default=0)
            samples.append((time.monotonic(), rss_kib(tree), conns, per_proc, biggest))
            if n % 4 == 0:
                foreign.update(processes_named("wrk", {p.pid for p in _LIVE}))
            n += 1

    other_cpu = OtherCpu() if server_pids is not None else None
    with tempfile.TemporaryFile(mode="w+") as out:
        if other_cpu is not None:
            other_cpu.start(server_pids())
        proc = spawn(cmd, out)
        # wrk closes its connections when the time is up: the "end" sample must be one
        # taken before that, while every connection is still open.
        cutoff = time.monotonic() + duration - 0.3
        thread = None
        if server_pids is not None:
            thread = threading.Thread(target=sampler, daemon=True)
            thread.start()
        try:
            proc.wait(timeout=duration + 60)
        except subprocess.TimeoutExpired:
            if run is not None:
                run.problems.append("wrk hung")
        finally:
            stop.set()
            kill_tree(proc, grace=1.0)  # waits for wrk: its CPU time is ours from here
            if thread is not None:
                thread.join()
            if other_cpu is not None and run is not None:
                run.other_cpu = other_cpu.stop(server_pids())
        out.seek(0)
        text = out.read()
    if run is not None and samples:
        before = [s for s in samples if s[0] <= cutoff] or samples
        _, run.rss_end_kib, run.conns_end, per_proc, run.rss_worker_end_kib = before[-1]
        if per_proc is not None:
            run.worker_conns = per_proc
        run.rss_peak_kib = max(s[1] for s in samples)
    if run is not None and run.other_cpu is not None and run.other_cpu > OTHER_CPU_LIMIT:
        run.disturbed = True
        run.problems.append(f"other processes used {run.other_cpu:.0%} of a CPU meanwhile: "
                            "numbers disturbed")
    elif run is not None and run.other_cpu is not None and run.other_cpu >= 0.05:
        run.notes.append(f"other processes used {run.other_cpu:.0%} of a CPU")
    if run is not None and foreign:
        run.disturbed = True
        run.problems.append("another wrk was running meanwhile (pid "
                            + ", ".join(map(str, sorted(foreign))) + "): numbers disturbed")
    for line in text.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    if run is not None:
        run.problems.append("wrk failed: " + (text.strip().splitlines() or ["no output"])[-1])
    return None


def server_cpus(args, scenario: Scenario) -> str:
    """taskset CPU list for the server: one CPU, or both benchmark CPUs for workers > 1."""
    return multi_cpus(args) if scenario.workers > 1 else str(args.server_cpu)


PID_LINE = re.compile(r"<(\d+)>")


def count_worker_requests(run: Run, scenario: Scenario, pidlog: Path, offset: int,
                          workers: set[int]) -> None:
    """Fill run.worker_requests from the `<pid>` lines logged after ``offset``; workers
    that logged nothing count 0."""
    try:
        with open(pidlog, "rb") as f:
            f.seek(offset)
            text = f.read().decode("ascii", "replace")
    except OSError as exc:
        run.problems.append(f"no per-worker counts: cannot read the access log ({exc})")
        return
    counts = dict.fromkeys(workers, 0)
    for m in PID_LINE.finditer(text):
        pid = int(m.group(1))
        counts[pid] = counts.get(pid, 0) + 1
    run.worker_requests = counts
    if run.worker_conns is not None:
        run.worker_conns = {pid: n for pid, n in run.worker_conns.items() if pid in counts}
    logged = sum(counts.values())
    # The servers also log responses wrk did not read any more when it stopped.
    if abs(logged - run.requests) > scenario.connections + run.requests // 100:
        run.notes.append(f"the access logs count {logged:,} requests, wrk {run.requests:,}")
    if len(counts) != scenario.workers:
        run.notes.append(f"{len(counts)} worker processes seen, {scenario.workers} expected")


def bench_one(args, scenario: Scenario, server: Server, lua_path: str, logdir: Path) -> Run:
    run = Run(scenario.name, server.name)
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["PYTHONUNBUFFERED"] = "1"
    pidlog = None
    if scenario.workers > 1:
        # Not pinned to one core: the workers get both benchmark CPUs, wrk's one included.
        pidlog = logdir / f"{scenario.name}--{server.name}.pids"
        pidlog.unlink(missing_ok=True)
    if server.build_ceiling:
        try:
            ceiling_binary()
        except RuntimeError as exc:
            run.problems.append(f"cannot build the C ceiling: {exc}")
            return run
    argv = (["taskset", "-c", server_cpus(args, scenario)]
            + server.command(scenario.app, port, scenario.workers,
                             str(pidlog) if pidlog else None))
    log_path = logdir / f"{scenario.name}--{server.name}.log"
    seen_pids: set[int] = set()

    def server_pids() -> dict[int, int]:
        tree = process_tree(proc.pid)
        seen_pids.update(pid for pid in tree if pid != proc.pid)  # the workers
        return tree

    pidlog_offset = 0
    with open(log_path, "w+") as log:
        proc = spawn(argv, log, env=env)
        try:
            why = wait_until_serving(proc, port, args.start_timeout, scenario)
            if why:
                run.problems.append(f"server {why}")
                return run
            why = sanity_check(port, scenario)
            if why:
                run.problems.append(why)  # still measure: the flag says what is wrong
            run.rss_idle_kib = rss_kib(process_tree(proc.pid))
            if args.warmup > 0:
                run_wrk(args, scenario, port, args.warmup, lua_path)
            overflows = listen_overflows()
            if pidlog is not None:  # count only what the measured run logs
                pidlog_offset = pidlog.stat().st_size if pidlog.exists() else 0
            result = run_wrk(args, scenario, port, args.duration, lua_path,
                             server_pids=server_pids, run=run)
            overflows = listen_overflows() - overflows
            if overflows:
                run.notes.append(f"accept queue overflowed {overflows} times: SYNs dropped "
                                 "and retried")
            if proc.poll() is not None:
                run.problems.append(f"server exited with status {proc.returncode} during the run")
            if result is not None:
                run.requests = result["requests"]
                run.bytes = result["bytes"]
                secs = result["duration_us"] / 1e6
                run.rps = run.requests / secs if secs > 0 else 0.0
                if run.requests:
                    run.p50_us, run.p90_us = result["p50"], result["p90"]
                    run.p99_us, run.max_us = result["p99"], result["max"]
                run.non2xx = result["status"]
                run.socket_errors = {k: result[k] for k in ("connect", "read", "write",
                                                            "timeout") if result[k]}
                if run.requests == 0:
                    run.problems.append("no responses")
                if run.non2xx:
                    run.problems.append(f"{run.non2xx} non-2xx")
                if run.socket_errors:
                    run.problems.append("socket errors")
                if run.requests and run.bytes / run.requests < scenario.min_bytes_per_response:
                    run.problems.append(
                        f"short responses ({run.bytes / run.requests:.0f} bytes/response)")
            if scenario.report_connections and run.conns_end is not None:
                established, queued = run.conns_end
                if established < scenario.connections * 0.95:
                    run.problems.append(f"only {established} of {scenario.connections} "
                                        "connections established at the end")
                if queued:
                    run.notes.append(f"{queued} connections not accepted yet at the end")
        finally:
            kill_tree(proc)
            if pidlog is not None and run.rps is not None:
                count_worker_requests(run, scenario, pidlog, pidlog_offset, seen_pids)
            server_trouble = len(run.problems) > len([
                p for p in run.problems if "numbers disturbed" in p])
            if server_trouble and not args.quiet:
                log.seek(0)
                tail = log.read().strip().splitlines()[-15:]
                if tail:
                    print(f"    server log ({log_path}), last lines:", file=sys.stderr)
                    for line in tail:
                        print(f"      {line}", file=sys.stderr)
    return run


# --------------------------------------------------------------------------- --install


def bench_requirements() -> list[str]:
    """The `bench` extra of pyproject.toml (installed one by one, so that wsgiloop itself,
    which may be an editable install of another checkout, is left alone)."""
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r"^bench\s*=\s*\[(.*?)\]", text, re.M | re.S)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def dpkg_installed(package: str) -> bool:
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                              capture_output=True, text=True)
    except OSError:
        return True  # not a Debian system: nothing to say
    return "install ok installed" in done.stdout


def install() -> int:
    """Install what the benchmark needs: system packages with apt-get (when root, else
    print the command), then the `bench` extra and meinheld with pip. 0 if all went in."""
    status = 0
    apt = [p for p in APT_PACKAGES if not dpkg_installed(p)]
    if apt:
        cmd = ["apt-get", "install", "-y", *apt]
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print("+ apt-get update && " + " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL)
            if subprocess.run(cmd).returncode != 0:
                status = 1
        else:
            print("run as root first: " + " ".join(cmd), file=sys.stderr)
            status = 1
    pip = [sys.executable, "-m", "pip", "install"]
    for cmd in (pip + bench_requirements(), pip + ["--no-deps"] + PIP_NO_DEPS):
        print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            print(f"error: `{' '.join(cmd)}` failed", file=sys.stderr)
            status = 1
    if importlib.util.find_spec("wsgiloop") is None:
        print(f"wsgiloop is not importable: {PIP_SELF}", file=sys.stderr)
    return status


# --------------------------------------------------------------------------- main


def parse_list(value: str, known: dict, what: str) -> list:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(bad)} (choose from {', '.join(known)})")
    return [known[n] for n in names]


def preflight(args, servers: list[Server], scenarios: list[Scenario]) -> list[str]:
    missing = []
    if shutil.which("wrk") is None:
        missing.append(f"wrk is not installed: {APT_WRK}")
    if shutil.which("taskset") is None:
        missing.append(f"taskset is not installed: {APT_TASKSET}")
    modules = {s.import_name for s in servers
               if s.import_name and s.package != "wsgiloop" and not s.unavailable}
    if any(sc.needs_flask for sc in scenarios):
        modules.add("flask")
    for mod in sorted(modules):
        if importlib.util.find_spec(mod) is None:
            missing.append(f"{mod} is not installed: {PIP_BENCH}")
    if any(s.build_ceiling for s in servers) and shutil.which("gcc") is None:
        missing.append("gcc is not installed (it builds the C ceiling): apt-get install -y gcc")
    if any(s.name == "wsgiloop" for s in servers) and importlib.util.find_spec("wsgiloop") is None:
        missing.append(f"wsgiloop is not importable: {PIP_SELF}")
    cpus = os.sched_getaffinity(0)
    for what, cpu in (("--server-cpu", args.server_cpu), ("--client-cpu", args.client_cpu)):
        if cpu not in cpus:
            missing.append(f"{what} {cpu}: this process may only use CPUs {sorted(cpus)} "
                           "(on a 1-CPU machine use --server-cpu 0 --client-cpu 0)")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark wsgiloop and its peers with wrk (see bench/README.md).")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of unmeasured load before each run (default 1; 0: none)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        type=lambda v: parse_list(v, SERVERS, "server"),
                        help="comma-separated subset of: " + ", ".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        type=lambda v: parse_list(v, SCENARIOS, "scenario"),
                        help="comma-separated subset of: " + ", ".join(SCENARIOS))
    parser.add_argument("--out", default=str(BENCH / "results" / "latest.md"),
                        help="markdown file to write (default bench/results/latest.md)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU for the server (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU for wrk (1)")
    parser.add_argument("--wrk-timeout", default="10s",
                        help="wrk --timeout: slower responses count as timeout errors (10s)")
    parser.add_argument("--start-timeout", type=float, default=30.0,
                        help="seconds to wait for a server to answer (30)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 if any run is flagged")
    parser.add_argument("--quiet", action="store_true", help="no progress or server logs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per (scenario, server), taken in turns; the report shows "
                             "the median (default 1)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the results as JSON (for bench/chart.py)")
    parser.add_argument("--install", action="store_true",
                        help="first install what is missing (apt-get when root, pip: the "
                             "`bench` extra and meinheld), then run")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.repeat < 1:
        parser.error("--duration and --repeat must be >= 1 and --warmup >= 0")
    if args.install and install() != 0:
        print("error: --install did not finish, see above", file=sys.stderr)
        return 2

    missing = preflight(args, args.servers, args.scenarios)
    if missing:
        for m in missing:
            print(f"error: {m}", file=sys.stderr)
        return 2

    # 1,000 connections need ~1,000 descriptors in the server and in wrk.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        with open("/proc/loadavg") as f:
            args.loadavg_at_start = " ".join(f.read().split()[:3])
    except OSError:
        args.loadavg_at_start = "?"
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    runs: list[Run] = []
    logdir = Path(tempfile.mkdtemp(prefix="wsgiloop-bench-"))
    interrupted: BaseException | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for sc in args.scenarios:
                lua_path = os.path.join(tmp, f"{sc.name}.lua")
                Path(lua_path).write_text(lua_script(sc))
                if sc.workers > 1 and not args.quiet:
                    print(f"[{sc.name}] {multi_worker_caveat(args, sc)}", file=sys.stderr,
                          flush=True)
                todo = []
                for server in args.servers:
                    if server.hello_only and sc.app != "hello":
                        continue
                    if server.multi_only and sc.workers == 1:
                        continue
                    why_not = not_applicable(server, sc)
                    if why_not:
                        runs.append(Run(sc.name, server.name, skipped=why_not))
                        if not args.quiet:
                            print(f"[{sc.name}] {server.name}: n/a ({why_not})",
                                  file=sys.stderr, flush=True)
                        continue
                    todo.append(server)
                # --repeat: the servers take turns, so a slow patch of the machine hits
                # them all; the report has the median of each server's runs.
                done: dict[str, list[Run]] = {s.name: [] for s in todo}
                try:
                    for rnd in range(args.repeat):
                        for server in todo:
                            if not args.quiet:
                                print(f"[{sc.name}] {server.name}"
                                      + (f" (run {rnd + 1}/{args.repeat})"
                                         if args.repeat > 1 else "") + " ...",
                                      file=sys.stderr, flush=True)
                            run = bench_one(args, sc, server, lua_path, logdir)
                            done[server.name].append(run)
                            report_progress(args, run)
                finally:
                    runs.extend(median_run(rs) for rs in done.values() if rs)
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = exc  # still report what was measured, then exit as asked
        args.interrupted = True
        print("interrupted: reporting the runs that finished", file=sys.stderr)
    finally:
        kill_all_live()

    report = render(args, args.scenarios, args.servers, runs, started, time.monotonic() - t0)
    print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"wrote {out} (server logs in {logdir})", file=sys.stderr)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_json(args, runs, started, time.monotonic() - t0),
                                   indent=1) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    if interrupted is not None:
        return interrupted.code if isinstance(interrupted, SystemExit) else 130
    if args.strict and any(r.flagged for r in runs):
        return 3
    return 0


def report_progress(args, run: Run) -> None:
    if args.quiet:
        return
    print(f"    {run.rps or 0:,.0f} req/s, p50 {fmt_latency(run.p50_us)}, "
          f"p99 {fmt_latency(run.p99_us)}"
          + (f", others' CPU {run.other_cpu:.0%}" if run.other_cpu is not None else "")
          + (f"  FLAGGED: {'; '.join(run.problems)}" if run.flagged else ""),
          file=sys.stderr, flush=True)
    if run.worker_requests:
        print(f"    per worker: {fmt_spread(run)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
