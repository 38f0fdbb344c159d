"""The native hello and the WSGI hello measured side by side, the same way: user-space
instructions per request (callgrind) and Python calls per request (cProfile).

    python bench/native_profile.py                       # 1,000 warm-up + 10,000 requests
    python bench/native_profile.py --requests 20000 --tools callgrind
    python bench/native_profile.py --apps native --per-function 25

Each application runs as the real server, ``python -m wsgiloop APP`` (master + one
worker on CPU 0, ``--timeout 0``), loaded by wrk on CPU 1, with bench/profile.py's
machinery: callgrind runs the worker twice (``--warmup`` and ``--warmup + --requests``
requests) and the difference over ``--requests`` is the figure; cProfile runs in the
worker from its start.  Both figures are deterministic, so they compare before/after
changes on a loaded machine, where req/s does not.

``--in-process`` measures only what runs above the connection: the delegate (the
native :class:`~wsgiloop.web.Application` or the :class:`~wsgiloop.wsgi.WSGIGateway`)
called in a loop with one parsed request and a responder that only keeps the answer,
under callgrind (again two runs, the difference per request) -- the native handler's
request path against the WSGI gateway's, without the shared layers around them.  With
``--per-function N`` it also lists, for one request, the bytecodes each Python function
executes and its calls (``sys.settrace`` opcode events), the N largest first.

Apps: ``native`` is ``bench.native_apps:application`` (``GET /``: the ``Hello``
handler, with its ETag), ``native-no-etag`` the same handler without the ETag, ``wsgi``
is ``bench.apps:hello``.
"""

from __future__ import annotations

import argparse
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import profile  # noqa: E402

APPS = {"native": "bench.native_apps:application", "wsgi": "bench.apps:hello",
        "native-no-etag": "bench.native_apps:without_etag"}


class AppSession(profile.Session):
    """bench/profile.py's session, serving any ``module:attribute`` application."""

    def __init__(self, args: argparse.Namespace, spec: str) -> None:
        args.scenario = "hello"  # GET /, no body
        super().__init__(args)
        self.spec = spec

    def serve(self, name, config=None, wrapper=None, start_timeout=30.0):
        log = open(self.tmp / f"{name}.log", "w")
        port = profile.free_port()
        cmd = (["taskset", "-c", "0", *(wrapper or []), sys.executable, "-m", "wsgiloop",
                self.spec, "--bind", f"{profile.HOST}:{port}", "--timeout", "0",
                "--config", config or ""])
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                start_new_session=True)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.spec} exited with status {proc.returncode}")
            try:
                socket.create_connection((profile.HOST, port), timeout=1).close()
                return proc, port, log
            except OSError:
                time.sleep(0.1)
        profile.stop_server(proc)
        raise RuntimeError(f"{self.spec} did not listen within {start_timeout:.0f} s")


def cprofile_calls(ses: AppSession, top: int) -> tuple[dict[str, float], list[str]]:
    """Python calls per request by module, and the ``top`` functions by calls."""
    a = ses.args
    profile.run_cprofile(ses)  # writes ses.tmp / "cprofile.out"
    stats = pstats.Stats(str(ses.tmp / "cprofile.out")).stats
    calls: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for (path, line, name), (_cc, nc, _tt, _ct, _callers) in stats.items():
        module = profile.module_of(path)
        if module is None:
            module = "(C and stdlib)" if path == "~" or "/lib/python" in path else path
        calls[module] += nc
        where = f"{name} ({profile.module_of(path) or Path(path).name}:{line})"
        functions[where] += nc
    n = a.requests
    per_module = {m: c / n for m, c in calls.items()}
    rows = [f"{c / n:7.2f}  {f}" for f, c in functions.most_common(top)]
    return per_module, rows


class _Connection:
    """What :class:`wsgiloop.delegate.Request` copies from a connection."""

    peer = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8000)
    scheme = "http"
    delegate_data: dict = {}


class _Responder:
    """A responder that keeps the answer (the body's length) and nothing else."""

    loop = None
    client_gone = False
    head_sent = False

    def __init__(self) -> None:
        self.answered = 0

    def respond(self, status: str, headers: list, body: bytes) -> None:
        self.answered += len(body)

    def on_abort(self, callback) -> None:
        pass


def in_process_delegate(app: str):
    """``app``'s delegate, a function that serves one ``GET /`` through it (no sockets),
    and the responder that keeps the answers."""
    from wsgiloop.delegate import Request
    from wsgiloop.http.parser import RequestParser

    parser = RequestParser()
    parser.feed(profile.request_bytes("GET", b""))
    head = parser.next_event()
    module, _, name = APPS[app].partition(":")
    target = getattr(__import__(module, fromlist=[name]), name)
    if app == "wsgi":
        from wsgiloop.wsgi import WSGIGateway
        delegate = WSGIGateway(target)
    else:
        delegate = target
    responder = _Responder()
    connection = _Connection()

    def serve_one() -> None:
        delegate(Request(head, connection), responder)
    return serve_one, responder


def run_in_process(app: str, n: int) -> None:
    """Serve ``n`` requests for ``GET /`` through ``app``'s delegate (no sockets)."""
    serve_one, responder = in_process_delegate(app)
    for _ in range(n):
        serve_one()
    assert responder.answered == 12 * n, responder.answered


def in_process_functions(app: str, top: int) -> list[str]:
    """Bytecodes and calls per function for one request through ``app``'s delegate (after
    a warm-up), from ``sys.settrace`` opcode events: what each Python function on the
    path executes.  The first row is the totals."""
    serve_one, _ = in_process_delegate(app)
    for _ in range(100):
        serve_one()
    ops: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    harness = serve_one.__code__

    def tracer(frame, event, arg):
        code = frame.f_code
        if code is harness:
            return tracer
        frame.f_trace_opcodes = True
        module = profile.module_of(code.co_filename) or Path(code.co_filename).name
        where = f"{code.co_name} ({module}:{code.co_firstlineno})"
        if event == "call":
            calls[where] += 1
        elif event == "opcode":
            ops[where] += 1
        return tracer

    sys.settrace(tracer)
    try:
        serve_one()
    finally:
        sys.settrace(None)
    rows = [f"{sum(ops.values()):7d} bytecodes in {sum(calls.values())} Python calls"]
    rows += [f"{count:7d} {calls[where]:3d}  {where}" for where, count in ops.most_common(top)]
    return rows


def in_process_instructions(app: str, n: int, tmp: Path) -> int:
    out = tmp / f"cg-{app}-{n}"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, __file__, "--run-in-process", app, str(n)],
                   cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="native,wsgi", help="comma-separated: native, wsgi")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--tools", default="callgrind,cprofile")
    parser.add_argument("--per-function", type=int, default=0, metavar="N",
                        help="also list the N functions called most per request "
                             "(with --in-process: the N that execute most bytecodes)")
    parser.add_argument("--in-process", action="store_true",
                        help="only the delegate's part, without sockets (see above)")
    parser.add_argument("--run-in-process", nargs=2, metavar=("APP", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_in_process:
        run_in_process(args.run_in_process[0], int(args.run_in_process[1]))
        return 0
    apps = [a.strip() for a in args.apps.split(",") if a.strip()]
    if args.in_process:
        tmp = Path(tempfile.mkdtemp(prefix="wsgiloop-native-profile-"))
        for app in apps:
            base = in_process_instructions(app, args.warmup, tmp)
            more = in_process_instructions(app, args.warmup + args.requests, tmp)
            print(f"{app} ({APPS[app]}), in process: "
                  f"{(more - base) / args.requests:,.0f} instructions/request", flush=True)
            if args.per_function:
                print("\n".join(in_process_functions(app, args.per_function)), flush=True)
        return 0
    args.client = "wrk"
    os.sched_setaffinity(0, {1})
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for app in apps:
        ses = AppSession(args, APPS[app])
        line = f"{app} ({APPS[app]}):"
        if "callgrind" in tools:
            result = profile.run_callgrind(ses)
            line += f" {result['instructions_per_request']:,.0f} instructions/request;"
        if "cprofile" in tools:
            per_module, rows = cprofile_calls(ses, args.per_function)
            line += f" {sum(per_module.values()):.1f} Python calls/request"
            line += " (" + ", ".join(f"{m} {c:.1f}" for m, c in
                                     sorted(per_module.items(), key=lambda kv: -kv[1])
                                     if c >= 0.05) + ")"
            if rows:
                line += "\n" + "\n".join(rows)
        print(line, flush=True)
    with open("/proc/loadavg") as f:
        print("load average " + " ".join(f.read().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
