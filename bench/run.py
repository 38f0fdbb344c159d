"""Benchmark wsgiloop against gunicorn (sync, gthread), waitress and Tornado with wrk.

Run from anywhere (the servers always run with the repository root as cwd):

    python bench/run.py                       # everything, 10 s per run
    python bench/run.py --duration 3 --servers gunicorn-sync,wsgiloop --scenarios hello

Every server runs ONE worker process pinned to one CPU (``taskset -c 0``) and wrk runs
with one thread pinned to another (``taskset -c 1``). Each (scenario, server) pair gets
a fresh server on a free port; the whole process group is killed afterwards.

The exception is ``hello-2w``: two worker processes per server, NOT pinned to one core
(``taskset -c 0,1``, the cores wrk uses too), each writing its pid to an access log per
request so the report can show how evenly the requests spread over the workers.
See bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HOST = "127.0.0.1"
BASELINE = "gunicorn-sync"
RESULT_MARK = "WSGILOOP_BENCH_RESULT "
if str(ROOT) not in sys.path:  # `python bench/run.py`: make wsgiloop/bench importable
    sys.path.insert(0, str(ROOT))

APT_WRK = "apt-get install -y wrk"
APT_TASKSET = "apt-get install -y util-linux"
PIP_BENCH = "pip install -e '.[bench]'"
PIP_SELF = "pip install -e ."


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    app: str  # attribute of bench.apps
    connections: int = 50
    method: str = "GET"
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    expect_body: bytes | None = None  # exact body the sanity check expects
    expect_length: int | None = None  # or just its length
    min_bytes_per_response: int = 0  # wrk bytes/requests must be at least this
    report_connections: bool = False  # sample open/queued connections at the end
    workers: int = 1  # > 1: multi-process commands, unpinned, per-worker request counts

    @property
    def needs_flask(self) -> bool:
        return self.app == "flask_hello"


HELLO = b"Hello World!"
STREAM_LEN = 256 * 1024
POST_LEN = 64 * 1024
POST_BODY = b"x" * POST_LEN

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("hello", "12-byte `Hello World!`, keep-alive, 50 connections", "hello",
             expect_body=HELLO, min_bytes_per_response=len(HELLO)),
    Scenario("hello-close", "12-byte hello with `Connection: close` on every request, "
             "50 connections", "hello",
             headers=(("Connection", "close"),), expect_body=HELLO,
             min_bytes_per_response=len(HELLO)),
    Scenario("stream-256k", "256 KiB response yielded as 16 KiB chunks, 50 connections",
             "chunked", expect_length=STREAM_LEN, min_bytes_per_response=STREAM_LEN),
    Scenario("post-64k", "64 KiB POST echoed back (reads wsgi.input by CONTENT_LENGTH), "
             "50 connections", "echo", method="POST", body=POST_BODY,
             headers=(("Content-Type", "application/octet-stream"),),
             expect_body=POST_BODY, min_bytes_per_response=POST_LEN),
    Scenario("flask", "Hello World! from a real Flask app, keep-alive, 50 connections",
             "flask_hello", expect_body=HELLO, min_bytes_per_response=len(HELLO)),
    Scenario("hello-1000c", "12-byte hello over 1,000 keep-alive connections; RSS is the sum "
             "over the server's process tree, read while the connections are still open",
             "hello",
             connections=1000, expect_body=HELLO, min_bytes_per_response=len(HELLO),
             report_connections=True),
    Scenario("hello-2w", "12-byte hello, keep-alive, 50 connections, **2 worker processes** "
             "per server, not pinned: the workers share both cores with wrk, and each "
             "writes one access-log line (its pid) per request", "hello",
             expect_body=HELLO, min_bytes_per_response=len(HELLO), workers=2),
]}


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Server:
    name: str
    package: str | None  # distribution to report the version of / to check for
    argv: tuple[str, ...]  # {app} -> bench.apps:NAME, {port}, {host}, {python}
    hello_only: bool = False  # Tornado's native handler only knows hello
    note: str = ""
    # Scenarios with workers > 1 run multi_argv instead ({workers}; {pidlog}: a file that
    # gets one `<pid>` line per request). None: no multi-process mode, multi_na says why.
    multi_argv: tuple[str, ...] | None = None
    multi_na: str = ""
    multi_only: bool = False  # meaningless with one worker: multi-worker scenarios only
    needs_option: str | None = None  # run only if `python -m wsgiloop --help` lists it

    def command(self, app: str, port: int, workers: int = 1,
                pidlog: str | None = None) -> list[str]:
        subst = {"app": f"bench.apps:{app}", "port": str(port), "host": HOST,
                 "python": sys.executable, "bench": str(BENCH), "workers": str(workers),
                 "pidlog": pidlog or os.devnull}
        argv = self.multi_argv if workers > 1 else self.argv
        assert argv is not None
        return [a.format(**subst) for a in argv]


# The two-process Tornado line: tornado_forked() below, started as
# `python -c TORNADO_FORKED ARGS` so that bench/tornado_native.py stays single-process.
TORNADO_FORKED = "import sys; from bench.run import tornado_forked; tornado_forked(sys.argv[1:])"


WSGILOOP_PIDLOG = ("--access-log", "{pidlog}", "--access-log-format", "%(p)s")
GUNICORN_PIDLOG = ("--access-logfile", "{pidlog}", "--access-logformat", "%(p)s")

SERVERS: dict[str, Server] = {s.name: s for s in [
    Server("wsgiloop", "wsgiloop",
           ("{python}", "-m", "wsgiloop", "{app}", "--bind", "{host}:{port}"),
           multi_argv=("{python}", "-m", "wsgiloop", "{app}", "--bind", "{host}:{port}",
                       "-w", "{workers}") + WSGILOOP_PIDLOG,
           note="a master plus one worker process; with -w N the workers share one "
                "listening socket, each polling it with EPOLLEXCLUSIVE"),
    Server("wsgiloop-reuseport", "wsgiloop", (),
           multi_argv=("{python}", "-m", "wsgiloop", "{app}", "--bind", "{host}:{port}",
                       "-w", "{workers}", "--reuse-port") + WSGILOOP_PIDLOG,
           multi_only=True, needs_option="--reuse-port",
           note="the second accept mode: every worker also opens its own SO_REUSEPORT "
                "socket on the address, beside the shared one, and the kernel spreads new "
                "connections over all of them; multi-worker scenarios only, and n/a if "
                "`wsgiloop --help` does not list --reuse-port"),
    Server("gunicorn-sync", "gunicorn",
           ("{python}", "-m", "gunicorn", "-w", "1", "-k", "sync",
            "--bind", "{host}:{port}", "{app}"),
           multi_argv=("{python}", "-m", "gunicorn", "-w", "{workers}", "-k", "sync",
                       "--bind", "{host}:{port}") + GUNICORN_PIDLOG + ("{app}",),
           note="the sync worker does not keep connections alive: it closes after "
                "every response"),
    Server("gunicorn-gthread", "gunicorn",
           ("{python}", "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
            "--bind", "{host}:{port}", "{app}"),
           multi_argv=("{python}", "-m", "gunicorn", "-w", "{workers}", "-k", "gthread",
                       "--threads", "4", "--bind", "{host}:{port}") + GUNICORN_PIDLOG
           + ("{app}",)),
    Server("waitress", "waitress",
           ("{python}", "-m", "waitress", "--threads=4", "--listen={host}:{port}", "{app}"),
           multi_na="one process with a thread pool: waitress has no worker processes",
           note="`python -m waitress` is `waitress-serve`; its default connection_limit "
                "is 100, so with 1,000 connections the rest wait un-accepted"),
    Server("tornado-wsgi", "tornado",
           ("{python}", "{bench}/tornado_native.py", "--host", "{host}", "--port", "{port}",
            "--wsgi", "{app}"),
           multi_na="single process here; the multi-process Tornado line is tornado-native",
           note="tornado.wsgi.WSGIContainer, app called on the IOLoop thread"),
    Server("tornado-native", "tornado",
           ("{python}", "{bench}/tornado_native.py", "--host", "{host}", "--port", "{port}"),
           multi_argv=("{python}", "-c", TORNADO_FORKED, "--host", "{host}", "--port",
                       "{port}", "--processes", "{workers}", "--pid-log", "{pidlog}"),
           hello_only=True,
           note="reference line: Tornado's own RequestHandler hello, not WSGI; "
                "hello scenarios only. With N workers: `tornado.netutil.bind_sockets`, "
                "then `tornado.process.fork_processes(N)`, every child serving the "
                "shared socket"),
]}


def tornado_forked(argv: list[str]) -> None:
    """Tornado's native hello (bench/tornado_native.py's handler) in N processes: bind the
    socket, ``tornado.process.fork_processes(N)``, every child serves the shared socket
    on its own IOLoop and appends ``<pid>`` to --pid-log for every request."""
    import asyncio

    import tornado.httpserver
    import tornado.netutil
    import tornado.process
    import tornado.web

    from bench.tornado_native import HelloHandler

    parser = argparse.ArgumentParser(prog="tornado_forked")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--pid-log", required=True)
    opts = parser.parse_args(argv)
    sockets = tornado.netutil.bind_sockets(opts.port, opts.host)
    print(f"Listening at: http://{opts.host}:{opts.port}", file=sys.stderr, flush=True)
    tornado.process.fork_processes(opts.processes)  # the parent stays here, as supervisor
    # One O_APPEND write per request, like the access logs of the other servers.
    fd = os.open(opts.pid_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    line = f"<{os.getpid()}>\n".encode()

    def log_request(handler) -> None:
        os.write(fd, line)

    async def serve() -> None:
        app = tornado.web.Application([(r"/", HelloHandler)], log_function=log_request)
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()

    asyncio.run(serve())  # a clean exit: fork_processes does not restart the child


# --------------------------------------------------------------------------- /proc helpers


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, starttime) of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[1]), int(fields[2]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def process_tree(root: int) -> dict[int, int]:
    """{pid: starttime} of ``root`` and all its descendants."""
    parents: dict[int, list[tuple[int, int]]] = {}
    root_start = None
    for pid in _all_pids():
        st = _stat(pid)
        if st is None:
            continue
        if pid == root:
            root_start = st[2]
        parents.setdefault(st[0], []).append((pid, st[2]))
    if root_start is None:
        return {}
    tree = {root: root_start}
    todo = [root]
    while todo:
        for child, start in parents.get(todo.pop(), []):
            if child not in tree:
                tree[child] = start
                todo.append(child)
    return tree


def group_alive(pgid: int) -> bool:
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None and st[1] == pgid:
            return True
    return False


def listen_overflows() -> int:
    """The kernel's TcpExt ListenOverflows counter (system-wide): SYNs dropped because an
    accept queue was full."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return 0


def other_wrk_processes() -> list[int]:
    """wrk processes that this script did not start (they would disturb the numbers)."""
    ours = {p.pid for p in _LIVE}
    found = []
    for pid in _all_pids():
        if pid in ours:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "wrk":
                    found.append(pid)
        except OSError:
            pass
    return found


CLK_TCK = os.sysconf("SC_CLK_TCK")
OTHER_CPU_LIMIT = 0.2  # CPUs used by other processes during a run that flag it


def busy_jiffies() -> int:
    """user + nice + system time of all CPUs (/proc/stat; irq and softirq left out)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[1]) + int(fields[2]) + int(fields[3])


def cpu_jiffies(pids) -> dict[int, tuple[int, int]]:
    """{pid: (starttime, utime + stime)}."""
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        found[pid] = (int(fields[19]), int(fields[11]) + int(fields[12]))
    return found


def kernel_threads() -> list[int]:
    return [pid for pid in _all_pids() if pid == 2 or ((st := _stat(pid)) and st[0] == 2)]


class OtherCpu:
    """CPU time that neither this script, the server's process tree, wrk nor the kernel's
    threads used between start() and stop(): some other program's load, which disturbs the
    numbers. System-wide busy time minus ours, so short-lived processes count too."""

    def start(self, server_tree) -> None:
        self.server0 = cpu_jiffies(server_tree)
        self.kthreads0 = cpu_jiffies(kernel_threads())
        self.self0 = os.times()
        self.busy0 = busy_jiffies()
        self.t0 = time.monotonic()

    def stop(self, server_tree) -> float:
        """Average CPUs used by others (1.0 = one core busy all the time)."""
        busy = busy_jiffies() - self.busy0
        elapsed = time.monotonic() - self.t0
        t = os.times()
        ours = (t.user + t.system + t.children_user + t.children_system  # we and wrk
                - self.self0.user - self.self0.system - self.self0.children_user
                - self.self0.children_system) * CLK_TCK
        for before, after in ((self.server0, cpu_jiffies(server_tree)),
                              (self.kthreads0, cpu_jiffies(kernel_threads()))):
            for pid, (start, used) in after.items():
                old = before.get(pid)
                ours += used - old[1] if old and old[0] == start else used
        return max(0.0, (busy - ours) / CLK_TCK / elapsed) if elapsed > 0 else 0.0


def rss_kib(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def tcp_connections(port: int) -> tuple[int, int]:
    """(established connections to ``port``, length of its listen socket's accept queue)."""
    established = queued = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, state = parts[1], parts[3]
                if int(local.rsplit(":", 1)[1], 16) != port:
                    continue
                if state == "01":
                    established += 1
                elif state == "0A":  # LISTEN: rx_queue is the accept-queue length
                    queued = int(parts[4].split(":")[1], 16)
    except OSError:
        pass
    return established, queued


def connections_per_process(pids, port: int) -> dict[int, int]:
    """{pid: established connections to ``port`` whose socket that process holds open}."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    except OSError:
        return {}
    counts = {}
    for pid in pids:
        n = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


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
              if (st := _stat(pid)) is not None and st[1] != pgid}

    def signal_all(sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid, start in strays.items():
            st = _stat(pid)
            if st is not None and st[2] == start:  # still the same process, not a reused pid
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def settled() -> bool:
        return proc.poll() is not None and not group_alive(pgid) and not any(
            (st := _stat(pid)) is not None and st[2] == start for pid, start in strays.items())

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


def wait_until_serving(proc: subprocess.Popen, port: int, timeout: float) -> str | None:
    """None once the server answers an HTTP request, else why not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before answering"
        try:
            http_request(port, timeout=1.0)
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


@dataclass
class Run:
    scenario: str
    server: str
    rps: float | None = None
    p50_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    max_us: float | None = None
    requests: int = 0
    bytes: int = 0
    non2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    rss_idle_kib: int | None = None
    rss_end_kib: int | None = None
    rss_peak_kib: int | None = None
    conns_end: tuple[int, int] | None = None  # (established, accept queue)
    # workers > 1: {worker pid: requests it logged during the measured run}, and
    # {worker pid: connections it held at the end}
    worker_requests: dict[int, int] | None = None
    worker_conns: dict[int, int] | None = None
    problems: list[str] = field(default_factory=list)  # these flag the run
    notes: list[str] = field(default_factory=list)  # worth knowing, not an error
    disturbed: bool = False  # someone else's wrk, or other load, ran at the same time
    other_cpu: float | None = None  # CPUs used by other processes during the measurement
    skipped: str | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.problems)


def run_wrk(args, scenario: Scenario, port: int, duration: int, lua_path: str,
            server_pids=None, run: Run | None = None) -> dict | None:
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{scenario.connections}",
           f"-d{duration}s", f"--timeout={args.wrk_timeout}", "--latency", "-s", lua_path,
           f"http://{HOST}:{port}/"]
    samples: list[tuple[float, int, tuple[int, int] | None, dict[int, int] | None]] = []
    stop = threading.Event()

    foreign: set[int] = set()

    def sampler() -> None:
        n = 0
        while not stop.wait(0.25):
            tree = server_pids()
            conns = tcp_connections(port) if scenario.report_connections else None
            per_proc = (connections_per_process(tree, port) if scenario.workers > 1
                        else None)
            samples.append((time.monotonic(), rss_kib(tree), conns, per_proc))
            if n % 4 == 0:
                foreign.update(other_wrk_processes())
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
        _, run.rss_end_kib, run.conns_end, per_proc = before[-1]
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


def multi_cpus(args) -> str:
    """taskset CPU list of multi-worker servers: the server's and wrk's CPU together."""
    return ",".join(str(c) for c in sorted({args.server_cpu, args.client_cpu}))


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
            why = wait_until_serving(proc, port, args.start_timeout)
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


# --------------------------------------------------------------------------- report


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        if dist == "wsgiloop":  # not installed, run from the source tree
            init = ROOT / "wsgiloop" / "__init__.py"
            m = re.search(r'__version__\s*=\s*"([^"]+)"', init.read_text()) if init.exists() \
                else None
            if m:
                return m.group(1) + " (source tree)"
        return "not installed"


def machine_info(args) -> list[tuple[str, str]]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
        wrk = wrk.splitlines()[0].split(" Copyright")[0].strip() if wrk else "?"
    except OSError:
        wrk = "?"
    versions = ", ".join(f"{d} {version_of(d)}"
                         for d in ("wsgiloop", "gunicorn", "waitress", "tornado", "flask"))
    return [
        ("nproc", str(len(os.sched_getaffinity(0)))),
        ("CPU", model),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Servers", versions),
        ("Client", wrk),
        ("Load average at start", args.loadavg_at_start),
        ("Pinning", f"server on CPU {args.server_cpu}, wrk (1 thread) on CPU {args.client_cpu}"
                    + ("; multi-worker scenarios: the server's processes on CPUs "
                       f"{multi_cpus(args)} (shared with wrk)"
                       if any(sc.workers > 1 for sc in args.scenarios) else "")),
        ("Runs", f"{args.duration}s each after a {args.warmup}s warm-up; fresh server per run; "
                 f"wrk --timeout {args.wrk_timeout}"),
    ]


def fmt_latency(us: float | None) -> str:
    if us is None:
        return "—"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.0f} µs"


def fmt_mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f}"


def scenario_table(scenario: Scenario, runs: list[Run]) -> list[str]:
    base = next((r for r in runs if r.server == BASELINE and r.rps), None)
    head = ["Server", "Req/s", f"vs {BASELINE}", "p50", "p99", "Non-2xx",
            "Socket errors", "RSS MiB idle → end"]
    if scenario.report_connections:
        head.append("Open conns (un-accepted)")
    head.append("Status")
    rows = [head, ["---", "---:", "---:", "---:", "---:", "---:", "---", "---:"]
            + (["---:"] if scenario.report_connections else []) + ["---"]]
    for r in runs:
        ratio = f"{r.rps / base.rps:.2f}×" if base and r.rps is not None else "—"
        sock = ", ".join(f"{k} {v}" for k, v in r.socket_errors.items()) or "0"
        rss = (f"{fmt_mib(r.rss_idle_kib)} → {fmt_mib(r.rss_end_kib)}"
               if r.rss_end_kib is not None else fmt_mib(r.rss_idle_kib))
        row = [r.server, f"{r.rps:,.0f}" if r.rps is not None else "—", ratio,
               fmt_latency(r.p50_us), fmt_latency(r.p99_us),
               str(r.non2xx) if r.rps is not None else "—",
               sock if r.rps is not None else "—", rss]
        if scenario.report_connections:
            row.append(f"{r.conns_end[0]} ({r.conns_end[1]})" if r.conns_end else "—")
        status = "**FLAGGED**: " + "; ".join(r.problems) if r.flagged else "ok"
        if r.notes:
            status += " (" + "; ".join(r.notes) + ")"
        row.append(status)
        rows.append(row)
    return ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def spread(counts: dict[int, int]) -> tuple[float, float]:
    """(max/min ratio, busiest worker's share) of per-worker request counts."""
    total = sum(counts.values())
    hi, lo = max(counts.values()), min(counts.values())
    return (hi / lo if lo else float("inf")), (hi / total if total else 0.0)


def fmt_spread(run: Run) -> str:
    counts = run.worker_requests or {}
    if not counts:
        return "—"
    parts = []
    for pid in sorted(counts):
        conns = (run.worker_conns or {}).get(pid)
        parts.append(f"{counts[pid]:,}" + (f" ({conns} conns)" if conns is not None else ""))
    ratio, share = spread(counts)
    ratio_s = "∞" if ratio == float("inf") else f"{ratio:.2f}"
    return (" / ".join(parts) + f"; max/min {ratio_s}, busiest {share:.1%}"
            f" (even: {1 / len(counts):.1%})")


def multi_worker_caveat(args, scenario: Scenario) -> str:
    cpus = multi_cpus(args)
    ncpu = len(os.sched_getaffinity(0))
    text = (f"{scenario.workers} worker processes per server, NOT pinned to one core: "
            f"they run on CPUs {cpus} together with wrk (pinned to CPU {args.client_cpu})")
    if len(cpus.split(",")) < scenario.workers or ncpu <= scenario.workers:
        text += (f"; with {ncpu} cores and the load generator on the same cores this "
                 "measures contention, not scaling")
    return text + "."


def multi_table(scenario: Scenario, runs: list[Run]) -> list[str]:
    base = next((r for r in runs if r.server == BASELINE and r.rps), None)
    head = ["Server", "Req/s", f"vs {BASELINE}", "p50", "p99", "Non-2xx", "Socket errors",
            "RSS MiB idle → end", "Requests per worker (open conns at end)", "Max/min",
            "Busiest worker", "Status"]
    rows = [head, ["---", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---",
                   "---:", "---:", "---"]]
    for r in runs:
        if r.skipped:
            rows.append([r.server, "n/a"] + [""] * 9 + [f"n/a: {r.skipped}"])
            continue
        ratio = f"{r.rps / base.rps:.2f}×" if base and r.rps is not None else "—"
        sock = ", ".join(f"{k} {v}" for k, v in r.socket_errors.items()) or "0"
        rss = (f"{fmt_mib(r.rss_idle_kib)} → {fmt_mib(r.rss_end_kib)}"
               if r.rss_end_kib is not None else fmt_mib(r.rss_idle_kib))
        per_worker = mm = busiest = "—"
        if r.worker_requests:
            conns = r.worker_conns or {}
            per_worker = " / ".join(
                f"{r.worker_requests[pid]:,}"
                + (f" ({conns[pid]})" if pid in conns else "")
                for pid in sorted(r.worker_requests))
            ratio_mm, share = spread(r.worker_requests)
            mm = "∞" if ratio_mm == float("inf") else f"{ratio_mm:.2f}"
            busiest = f"{share:.1%}"
        status = "**FLAGGED**: " + "; ".join(r.problems) if r.flagged else "ok"
        if r.notes:
            status += " (" + "; ".join(r.notes) + ")"
        rows.append([r.server, f"{r.rps:,.0f}" if r.rps is not None else "—", ratio,
                     fmt_latency(r.p50_us), fmt_latency(r.p99_us),
                     str(r.non2xx) if r.rps is not None else "—",
                     sock if r.rps is not None else "—", rss, per_worker, mm, busiest,
                     status])
    return ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def render(args, scenarios: list[Scenario], servers: list[Server], runs: list[Run],
           started: datetime.datetime, elapsed: float) -> str:
    out = ["# wsgiloop benchmark", "",
           f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s in all: "
           f"`python bench/run.py {' '.join(sys.argv[1:])}`".rstrip(), ""]
    out += ["| Machine | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in machine_info(args)]
    out.append("")
    ncpu = len(os.sched_getaffinity(0))
    if args.server_cpu == args.client_cpu:
        out.append("> Note: server and wrk share one CPU, so the numbers are not comparable "
                   "with pinned runs.")
    elif ncpu == 2:
        out.append("> Note: this machine has 2 cores: the client (wrk) and the server each "
                   "get one core, and nothing else is left for either.")
    else:
        out.append(f"> Note: {ncpu} cores; the server gets one core and wrk another.")
    if getattr(args, "interrupted", False):
        out += ["> **Interrupted**: only the runs that finished are shown.", ""]
    out += ["> Every server runs one worker process (except in multi-worker scenarios such "
            "as `hello-2w`, see there). `vs gunicorn-sync` is Req/s divided "
            "by gunicorn-sync's Req/s in the same scenario of this run. p50/p99 come from "
            "wrk's latency histogram (responses slower than the wrk timeout are counted as "
            "`timeout` socket errors instead). A row with non-2xx answers, socket errors, "
            "a failed start or a wrong answer to the check request is **FLAGGED**.", ""]
    for sc in scenarios:
        if sc.workers > 1:
            sc_runs = [r for r in runs if r.scenario == sc.name]
            if not any(not r.skipped for r in sc_runs):
                continue
            out += [f"## {sc.name}", "", sc.title + ".", ""]
            out += [f"> **Not pinned**: {multi_worker_caveat(args, sc)} Every server here "
                    "writes one access-log line per request (its pid, `%(p)s`), so Req/s is "
                    "not comparable with the single-worker tables. Requests per worker are "
                    "the lines each worker logged during the measured run (pid order), in "
                    "brackets the connections it held shortly before wrk stopped; Max/min "
                    "is the busiest worker's count over the idlest's, Busiest worker its "
                    f"share of all requests (even: {1 / sc.workers:.0%}).", ""]
            out += multi_table(sc, sc_runs)
            out.append("")
            continue
        sc_runs = [r for r in runs if r.scenario == sc.name and not r.skipped]
        if not sc_runs:
            continue
        out += [f"## {sc.name}", "", sc.title + ".", ""]
        out += scenario_table(sc, sc_runs)
        out.append("")
    out += ["## Commands", "", "Each server command is prefixed with "
            f"`taskset -c {args.server_cpu}` and runs with the repository root as cwd "
            "(`{port}` is a free port, `{app}` e.g. `bench.apps:hello`):", ""]
    def show(argv: tuple[str, ...], workers: int = 1) -> str:
        words = [f"'{a}'" if (" " in a or "%" in a) else a for a in argv]
        cmd = " ".join(words).replace("{python}", "python").replace("{bench}", "bench")
        return (cmd.replace("{host}", HOST).replace("{workers}", str(workers))
                .replace("{pidlog}", "PIDLOG"))

    for s in servers:
        if not s.multi_only:
            out.append(f"- **{s.name}**: `{show(s.argv)}`" + (f" — {s.note}" if s.note else ""))
    for sc in scenarios:
        if sc.workers == 1:
            continue
        out += ["", f"In `{sc.name}` the servers run as below, prefixed with "
                f"`taskset -c {multi_cpus(args)}` (`PIDLOG` is a temporary file of `<pid>` "
                "lines):", ""]
        for s in servers:
            if s.hello_only and sc.app != "hello":
                continue
            why_not = not_applicable(s, sc)
            if s.multi_argv is not None:
                line = f"- **{s.name}**: `{show(s.multi_argv, sc.workers)}`"
                out.append(line + (f" — n/a: {why_not}" if why_not else ""))
            else:
                out.append(f"- **{s.name}**: n/a — {why_not}")
        out.append("")
    out.append(f"- **wrk**: `taskset -c {args.client_cpu} wrk -t1 -c50 -d{args.duration}s "
               f"--timeout={args.wrk_timeout} --latency -s SCENARIO.lua "
               f"http://{HOST}:PORT/` (-c1000 for hello-1000c)")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main

_HELP_CACHE: dict[str, str] = {}


def wsgiloop_help() -> str:
    """`python -m wsgiloop --help` (to see which options this wsgiloop has), cached."""
    if "text" not in _HELP_CACHE:
        try:
            done = subprocess.run([sys.executable, "-m", "wsgiloop", "--help"], cwd=ROOT,
                                  capture_output=True, text=True, timeout=30)
            _HELP_CACHE["text"] = done.stdout
        except (OSError, subprocess.TimeoutExpired):
            _HELP_CACHE["text"] = ""
    return _HELP_CACHE["text"]


def not_applicable(server: Server, scenario: Scenario) -> str | None:
    """Why ``server`` has no row in ``scenario`` (shown as n/a), or None."""
    if scenario.workers > 1 and server.multi_argv is None:
        return server.multi_na or "no multi-process mode"
    if server.needs_option and server.needs_option not in wsgiloop_help().split():
        return (f"this wsgiloop has no {server.needs_option} (`wsgiloop --help`): its only "
                "accept mode is one listening socket shared by the workers, each polling "
                "it with EPOLLEXCLUSIVE")
    return None


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
    modules = {s.package for s in servers if s.package and s.package != "wsgiloop"}
    if any(sc.needs_flask for sc in scenarios):
        modules.add("flask")
    for mod in sorted(modules):
        if importlib.util.find_spec(mod) is None:
            missing.append(f"{mod} is not installed: {PIP_BENCH}")
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
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be >= 1 and --warmup >= 0")

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
                    if not args.quiet:
                        print(f"[{sc.name}] {server.name} ...", file=sys.stderr, flush=True)
                    run = bench_one(args, sc, server, lua_path, logdir)
                    runs.append(run)
                    if not args.quiet:
                        print(f"    {run.rps or 0:,.0f} req/s, p50 {fmt_latency(run.p50_us)}, "
                              f"p99 {fmt_latency(run.p99_us)}"
                              + (f", others' CPU {run.other_cpu:.0%}"
                                 if run.other_cpu is not None else "")
                              + (f"  FLAGGED: {'; '.join(run.problems)}" if run.flagged
                                 else ""), file=sys.stderr, flush=True)
                        if run.worker_requests:
                            print(f"    per worker: {fmt_spread(run)}", file=sys.stderr,
                                  flush=True)
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
    if interrupted is not None:
        return interrupted.code if isinstance(interrupted, SystemExit) else 130
    if args.strict and any(r.flagged for r in runs):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
