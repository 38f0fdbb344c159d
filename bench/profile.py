"""Where one request's time goes in a wsgiloop worker, by layer: the per-request budget.

    python bench/profile.py                          # hello, 20,000 keep-alive requests
    python bench/profile.py --scenario post-64k --requests 10000
    python bench/profile.py --tools cprofile,callgrind --json /tmp/budget.json

The server is the real thing, ``python -m wsgiloop bench.apps:APP`` (a master plus one
worker, pinned to CPU 0, ``--timeout 0``), and the load a fixed number of requests from a
fixed number of requests from wrk (``-t1``, pinned to CPU 1, ``--connections`` keep-alive
connections) whose Lua ``response()`` hook counts the answers and stops wrk after
``--requests`` of them (after ``--warmup`` unmeasured ones, by a wrk of its own): the
worker is as saturated as under bench/run.py. (``--client python``: a small Python client
of this script's instead, one request in flight per connection; slower than the server,
so the worker then waits for every request.) Four tools, each on a fresh server
(``--tools``, all four by default):

``cpu``
    No profiler. The worker's CPU time for the measured requests, from
    ``/proc/PID/schedstat`` (nanoseconds on the CPU) and ``/proc/PID/stat`` (the user /
    kernel split, in clock ticks): the real cost of a request.
``pyspy``
    ``py-spy record --rate 1000 --format raw`` attached to the worker while the measured
    requests run; py-spy leaves idle samples (the worker waiting in ``epoll_wait``) out.
    Every sample is charged to the innermost frame that belongs to a layer (below), so
    time in the standard library or in C functions (``socket.send``, ``epoll.poll``...)
    counts for the wsgiloop module that called it. The per-layer share of the samples
    times the ``cpu`` run's CPU time per request is the layer's µs per request.
``cprofile``
    ``cProfile`` started in the worker by a ``post_worker_init`` hook (a ``--config``
    file this script writes) and dumped by ``worker_exit``. Gives two figures per layer:
    Python function calls per request (deterministic: the same on a loaded machine) and
    cProfile's own µs per request (its overhead inflates call-heavy code, so it is shown
    only as a share). Time of C functions and standard-library code is handed up to the
    calling layer through cProfile's caller records.
``callgrind``
    The worker under ``valgrind --tool=callgrind`` (followed through the master's fork),
    run twice with ``--warmup`` and ``--warmup + --requests`` requests; the difference of
    the worker's instruction counts over ``--requests`` is the user-space instructions per
    request, a figure that does not move with the machine's load (the kernel's work is not
    counted).

Layers, by the file of a frame: ``loop`` wsgiloop/ioloop.py, ``stream`` wsgiloop/iostream.py,
``parser`` wsgiloop/http/, ``connection`` wsgiloop/server.py, ``gateway`` wsgiloop/wsgi/,
``app`` bench/apps.py (and flask, werkzeug, jinja2...), ``other wsgiloop`` any other file of
wsgiloop/ (each named in the per-module table).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/profile.py`: make bench importable
    sys.path.insert(0, str(ROOT))

from bench.procstats import children  # noqa: E402

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LAYERS = ("loop", "stream", "parser", "connection", "gateway", "app", "other wsgiloop")
APP_PACKAGES = ("flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click",
                "blinker")

SCENARIOS = {
    # name: (app, method, body)
    "hello": ("hello", "GET", b""),
    "post-64k": ("echo", "POST", b"x" * 65536),
    "flask": ("flask_hello", "GET", b""),
    "stream-256k": ("chunked", "GET", b""),
}

HOOKS = '''
import cProfile

_profile = cProfile.Profile()


def post_worker_init(worker):
    _profile.enable()


def worker_exit(server, worker):
    _profile.disable()
    _profile.dump_stats({out!r})
'''


# --------------------------------------------------------------------------- layers


def module_of(path: str) -> str | None:
    """The project module a source file belongs to ('wsgiloop/http/parser.py',
    'bench/apps.py', 'flask'), or None for the standard library, C code and the rest."""
    p = path.replace("\\", "/")
    root = str(ROOT).replace("\\", "/") + "/"
    if p.startswith(root):
        rel = p[len(root):]
        if rel.startswith(("wsgiloop/", "bench/")):
            return rel
    m = re.search(r"/site-packages/([A-Za-z0-9_]+)", p)
    if m and m.group(1) in APP_PACKAGES:
        return m.group(1)
    m = re.search(r"(?:^|/)(wsgiloop/[^ ]+\.py)$", p)  # an installed wsgiloop
    if m:
        return m.group(1)
    return None


def layer_of(module: str) -> str:
    if module == "wsgiloop/ioloop.py":
        return "loop"
    if module == "wsgiloop/iostream.py":
        return "stream"
    if module.startswith("wsgiloop/http/"):
        return "parser"
    if module == "wsgiloop/server.py":
        return "connection"
    if module.startswith("wsgiloop/wsgi/"):
        return "gateway"
    if module.startswith("wsgiloop/"):
        return "other wsgiloop"
    return "app"


# --------------------------------------------------------------------------- the client


def request_bytes(method: str, body: bytes) -> bytes:
    head = f"{method} / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: bench-profile\r\n"
    if body:
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def drive(port: int, total: int, connections: int, request: bytes,
          timeout: float = 600.0) -> int:
    """Send ``total`` requests over ``connections`` keep-alive connections, one in flight
    per connection, and wait for every answer. Returns the answers that had status 200."""
    sel = selectors.DefaultSelector()
    state = {}
    sent = 0
    for _ in range(min(connections, total)):
        s = socket.create_connection((HOST, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        state[s] = {"buf": bytearray(), "out": memoryview(request), "need": None}
        sel.register(s, selectors.EVENT_WRITE)
        sent += 1
    done = ok = 0
    deadline = time.monotonic() + timeout
    while done < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {total} answers within {timeout:.0f} s")
        for key, events in sel.select(1.0):
            s, st = key.fileobj, state[key.fileobj]
            if events & selectors.EVENT_WRITE:
                n = s.send(st["out"])
                st["out"] = st["out"][n:]
                if not st["out"]:
                    sel.modify(s, selectors.EVENT_READ)
                continue
            data = s.recv(262144)
            if not data:
                raise RuntimeError("the server closed a keep-alive connection")
            buf = st["buf"]
            buf += data
            if st["need"] is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = bytes(buf[:end]).decode("latin-1")
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                st["status"] = head[9:12]
                st["need"] = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < st["need"]:
                continue
            del buf[:st["need"]]
            st["need"] = None
            done += 1
            ok += st["status"] == "200"
            if sent < total:
                sent += 1
                st["out"] = memoryview(request)
                sel.modify(s, selectors.EVENT_WRITE)
    for s in state:
        sel.unregister(s)
        s.close()
    return ok


WRK_DONE = "WSGILOOP_PROFILE_DONE"

WRK_LUA = """
wrk.method = "{method}"
{body}
local n, bad = 0, 0
response = function(status, headers, body)
  n = n + 1
  if status ~= 200 then bad = bad + 1 end
  if n == {total} then
    io.write(string.format("{mark} %d %d\\n", n, bad))
    io.flush()
    wrk.thread:stop()
  end
end
"""


def drive_wrk(port: int, total: int, connections: int, method: str, body: bytes,
              tmp: Path, timeout: float = 900.0) -> int:
    """wrk -t1 until ``total`` answers have arrived (its Lua hook says so on stdout; wrk
    itself would wait out its -d). Returns the answers that had status 200."""
    script = tmp / f"profile-{total}.lua"
    body_lua = ""
    if body:
        assert body == b"x" * len(body)
        body_lua = (f'wrk.body = string.rep("x", {len(body)})\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"')
    script.write_text(WRK_LUA.format(method=method, body=body_lua, total=total,
                                     mark=WRK_DONE))
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{min(connections, total)}",
           f"-d{int(timeout)}s", "--timeout", "60s", "-s", str(script),
           f"http://{HOST}:{port}/"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith(WRK_DONE):
                _, n, bad = line.split()
                return int(n) - int(bad)
        raise RuntimeError(f"wrk ended (status {proc.wait()}) before {total} answers")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(app: str, port: int, config: str | None, wrapper: list[str],
                 log, timeout: float) -> subprocess.Popen:
    cmd = (["taskset", "-c", "0"] + wrapper
           + [sys.executable, "-m", "wsgiloop", f"bench.apps:{app}", "--bind",
              f"{HOST}:{port}", "--timeout", "0", "--config", config or ""])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"the server did not listen within {timeout:.0f} s")


def worker_pid(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """The worker: the master's (only) child. The master listens before it forks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(proc.pid)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise RuntimeError("the master started no worker")


def stop_server(proc: subprocess.Popen, grace: float = 60.0) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cpu_ns(pid: int) -> tuple[int, int, int]:
    """(ns on the CPU from schedstat, utime ticks, stime ticks) of ``pid``."""
    with open(f"/proc/{pid}/schedstat") as f:
        ns = int(f.read().split()[0])
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return ns, int(fields[11]), int(fields[12])


# --------------------------------------------------------------------------- the tools


class Session:
    def __init__(self, args):
        self.args = args
        self.app, self.method, self.body = SCENARIOS[args.scenario]
        self.request = request_bytes(self.method, self.body)
        self.tmp = Path(tempfile.mkdtemp(prefix="wsgiloop-profile-"))

    def serve(self, name: str, config: str | None = None, wrapper: list[str] | None = None,
              start_timeout: float = 30.0):
        log = open(self.tmp / f"{name}.log", "w")
        port = free_port()
        proc = start_server(self.app, port, config, wrapper or [], log, start_timeout)
        return proc, port, log

    def load(self, port: int, n: int) -> None:
        if n <= 0:
            return
        if self.args.client == "wrk":
            ok = drive_wrk(port, n, self.args.connections, self.method, self.body, self.tmp)
        else:
            ok = drive(port, n, self.args.connections, self.request)
        if ok != n:
            raise RuntimeError(f"{n - ok} of {n} answers were not 200 OK")


def run_cpu(ses: Session) -> dict:
    a = ses.args
    proc, port, log = ses.serve("cpu")
    try:
        worker = worker_pid(proc)
        ses.load(port, a.warmup)
        ns0, u0, s0 = cpu_ns(worker)
        t0 = time.monotonic()
        ses.load(port, a.requests)
        elapsed = time.monotonic() - t0
        ns1, u1, s1 = cpu_ns(worker)
    finally:
        stop_server(proc)
        log.close()
    ticks = (u1 - u0) + (s1 - s0)
    us = (ns1 - ns0) / 1e3 / a.requests
    return {"cpu_us_per_request": us,
            "user_share": (u1 - u0) / ticks if ticks else None,
            "requests_per_s": a.requests / elapsed,
            "worker_cpu_s": (ns1 - ns0) / 1e9}


def leaf_frame(frames: list[str]) -> tuple[str, str] | None:
    """(module, 'function (module:line)') of the innermost frame of a py-spy raw stack
    that belongs to a project module."""
    for frame in reversed(frames):
        m = re.search(r"^(.*) \((.*?)(?::(\d+))?\)$", frame)
        if m:
            mod = module_of(m.group(2))
            if mod:
                return mod, f"{m.group(1)} ({mod}:{m.group(3) or '?'})"
    return None


def run_pyspy(ses: Session) -> dict:
    a = ses.args
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(pyspy):
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    proc, port, log = ses.serve("pyspy")
    out = ses.tmp / "pyspy.txt"
    try:
        worker = worker_pid(proc)
        ses.load(port, a.warmup)
        spy = subprocess.Popen(["taskset", "-c", "1", pyspy, "record", "--pid", str(worker),
                                "--rate", str(a.rate), "--format", "raw", "--full-filenames",
                                "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=log)
        time.sleep(1.0)  # py-spy attaches
        ns0 = cpu_ns(worker)[0]
        ses.load(port, a.pyspy_requests)
        ns1 = cpu_ns(worker)[0]
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    finally:
        stop_server(proc)
        log.close()
    modules: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    total = other_threads = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # Only the loop's thread (its stacks go through run_forever): the worker's helper
        # threads (the loop's watchdog waiting on an Event...) are not idle to py-spy,
        # but cost no CPU.
        if not any(f.startswith("IOLoop.run_forever ") for f in frames):
            other_threads += n
            continue
        total += n
        leaf = leaf_frame(frames)
        modules[leaf[0] if leaf else "(outside the project)"] += n
        if leaf:
            lines[leaf[1]] += n
    return {"samples": total, "other_thread_samples": other_threads,
            "modules": dict(modules), "lines": dict(lines.most_common(15)),
            "cpu_us_per_request_profiled": (ns1 - ns0) / 1e3 / a.pyspy_requests}


def run_cprofile(ses: Session) -> dict:
    a = ses.args
    out = ses.tmp / "cprofile.out"
    conf = ses.tmp / "profile_hooks.py"
    conf.write_text(HOOKS.format(out=str(out)))
    proc, port, log = ses.serve("cprofile", config=str(conf))
    try:
        ses.load(port, a.requests)  # profiled from the worker's start: no warm-up
    finally:
        stop_server(proc)
        log.close()
    if not out.exists():
        raise RuntimeError("the worker wrote no profile (did worker_exit run?)")
    stats = pstats.Stats(str(out)).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    seconds: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    def charge(func, amount: float, depth: int = 0) -> None:
        mod = module_of(func[0])
        if mod:
            seconds[mod] += amount
            return
        callers = stats.get(func, (0, 0, 0, 0, {}))[4]
        weights = {c: (v[2] if depth == 0 else v[3]) for c, v in callers.items()}
        whole = sum(weights.values())
        if not callers or whole <= 0 or depth > 12:
            seconds["(outside the project)"] += amount
            return
        for caller, w in weights.items():
            charge(caller, amount * w / whole, depth + 1)

    for func, (_cc, nc, tt, _ct, _callers) in stats.items():
        if func[0] == "~" and "poll" in func[2] and "epoll" in func[2]:
            seconds["(epoll.poll: waiting, idle included)"] += tt
            continue
        charge(func, tt)
        mod = module_of(func[0])
        if mod:
            calls[mod] += nc
    return {"seconds": dict(seconds), "calls": dict(calls)}


def callgrind_ir(ses: Session, n: int) -> int:
    outdir = ses.tmp / f"callgrind-{n}"
    outdir.mkdir()
    wrapper = ["valgrind", "--tool=callgrind", "--trace-children=yes",
               f"--callgrind-out-file={outdir}/cg.%p"]
    proc, port, log = ses.serve(f"callgrind-{n}", wrapper=wrapper, start_timeout=300.0)
    try:
        worker = worker_pid(proc)
        ses.load(port, n)
    finally:
        stop_server(proc, grace=300.0)
        log.close()
    path = outdir / f"cg.{worker}"
    if not path.exists():
        raise RuntimeError(f"no callgrind output for the worker (pid {worker}) in {outdir}")
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def run_callgrind(ses: Session) -> dict:
    a = ses.args
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed: apt-get install -y valgrind")
    base = callgrind_ir(ses, a.warmup)
    more = callgrind_ir(ses, a.warmup + a.requests)
    return {"instructions_per_request": (more - base) / a.requests,
            "instructions_base": base, "instructions_total": more}


# --------------------------------------------------------------------------- report


def by_layer(per_module: dict[str, float]) -> dict[str, float]:
    layers: Counter[str] = Counter()
    for mod, v in per_module.items():
        layers[layer_of(mod) if not mod.startswith("(") else mod] += v
    return dict(layers)


def render(args, results: dict) -> str:
    n = args.requests
    lines = [f"# Per-request budget: {args.scenario}, {n:,} keep-alive requests over "
             f"{args.connections} connections ({args.client}), load average "
             f"{results.get('loadavg', '?')}", ""]
    cpu = results.get("cpu")
    us = cpu["cpu_us_per_request"] if cpu else None
    if cpu:
        split = (f"{cpu['user_share']:.0%} user, {1 - cpu['user_share']:.0%} kernel; "
                 if cpu["user_share"] is not None else "")
        lines += [f"Worker CPU per request (no profiler): **{us:.1f} µs** "
                  f"({split}{cpu['requests_per_s']:,.0f} req/s from {args.client})", ""]
    cg = results.get("callgrind")
    if cg:
        lines += [f"User-space instructions per request (callgrind): "
                  f"**{cg['instructions_per_request']:,.0f}**", ""]
    spy = results.get("pyspy")
    prof = results.get("cprofile")
    table_layers = [*LAYERS, "(outside the project)"]
    head = ["Layer"]
    if spy:
        head += ["py-spy share", "µs/request (share × CPU)" if us else ""]
    if prof:
        head += ["cProfile share", "Python calls/request"]
    if spy or prof:
        lines += ["| " + " | ".join(h for h in head if h) + " |",
                  "| --- |" + " ---: |" * (len([h for h in head if h]) - 1)]
        spy_l = by_layer(spy["modules"]) if spy else {}
        spy_total = sum(spy_l.values()) or 1
        prof_s = {k: v for k, v in (prof["seconds"] if prof else {}).items()
                  if not k.startswith("(epoll")}
        prof_l = by_layer(prof_s)
        prof_total = sum(prof_l.values()) or 1
        prof_c = by_layer(prof["calls"]) if prof else {}
        for layer in table_layers:
            row = [layer]
            if spy:
                share = spy_l.get(layer, 0) / spy_total
                row.append(f"{share:.1%}")
                if us:
                    row.append(f"{share * us:.1f}")
            if prof:
                row.append(f"{prof_l.get(layer, 0) / prof_total:.1%}")
                row.append(f"{prof_c.get(layer, 0) / n:.1f}" if layer in prof_c else "—")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines += ["Per module (py-spy share of samples; cProfile calls per request):", "",
                  "| Module | Layer | py-spy share | calls/request |",
                  "| --- | --- | ---: | ---: |"]
        mods = set(spy["modules"] if spy else {}) | set(prof["calls"] if prof else {})
        for mod in sorted(mods, key=lambda m: -(spy["modules"].get(m, 0) if spy else 0)):
            share = (f"{spy['modules'].get(mod, 0) / spy_total:.1%}" if spy else "—")
            c = prof["calls"].get(mod) if prof else None
            layer = layer_of(mod) if not mod.startswith("(") else ""
            lines.append(f"| {mod} | {layer} | {share} | "
                         + (f"{c / n:.1f}" if c else "—") + " |")
        lines.append("")
        if spy and spy.get("lines"):
            lines += ["Hottest lines (py-spy samples of the loop's thread, charged as above; "
                      "a line that calls C, e.g. `socket.send`, carries its kernel time):", "",
                      "| Line | share | µs/request |", "| --- | ---: | ---: |"]
            for where, count in sorted(spy["lines"].items(), key=lambda kv: -kv[1])[:12]:
                share = count / spy_total
                lines.append(f"| `{where}` | {share:.1%} | "
                             + (f"{share * us:.1f}" if us else "—") + " |")
            lines.append("")
        if prof and "(epoll.poll: waiting, idle included)" in prof["seconds"]:
            lines.append("cProfile's time in `epoll.poll` (the worker waiting for the client, "
                         "idle included) is left out of its shares.")
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="hello")
    parser.add_argument("--requests", type=int, default=20000,
                        help="measured requests (default 20,000)")
    parser.add_argument("--warmup", type=int, default=2000,
                        help="unmeasured requests first (default 2,000)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--tools", default="cpu,pyspy,cprofile,callgrind",
                        help="comma-separated: cpu, pyspy, cprofile, callgrind (default all)")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--pyspy-requests", type=int, default=100000,
                        help="measured requests under py-spy, for enough samples "
                             "(default 100,000)")
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk",
                        help="the load: wrk stopped by its Lua hook (default), or this "
                             "script's own Python client")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    run = {"cpu": run_cpu, "pyspy": run_pyspy, "cprofile": run_cprofile,
           "callgrind": run_callgrind}
    bad = [t for t in tools if t not in run]
    if bad:
        parser.error(f"unknown tool(s): {', '.join(bad)}")
    os.sched_setaffinity(0, {1})  # the client; the server is on CPU 0
    ses = Session(args)
    results: dict = {}
    for tool in tools:
        print(f"[{tool}] ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            results[tool] = run[tool](ses)
        except RuntimeError as exc:
            print(f"[{tool}] failed: {exc} (logs in {ses.tmp})", file=sys.stderr)
            results[tool + "_error"] = str(exc)
            continue
        print(f"[{tool}] done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    with open("/proc/loadavg") as f:
        results["loadavg"] = " ".join(f.read().split()[:3])
    print(render(args, results))
    if args.json:
        Path(args.json).write_text(json.dumps({"scenario": args.scenario,
                                               "requests": args.requests,
                                               "connections": args.connections,
                                               **results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
