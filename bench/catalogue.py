"""The benchmark's catalogue: the scenarios (application, load, expected answer) and the
servers (command lines, one worker and several), which server runs in which scenario, and
the CPUs they are pinned to.  bench/run.py runs them; bench/README.md describes them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HOST = "127.0.0.1"
BASELINE = "gunicorn-sync"  # the server the others' Req/s are divided by

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
    Scenario("stream-256k", "256 KiB response yielded as 16 KiB chunks, 20 connections",
             "chunked", connections=20, expect_length=STREAM_LEN,
             min_bytes_per_response=STREAM_LEN),
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
    module: str | None = None  # module to import-check, when it is not ``package``
    # A reference line, not a WSGI peer running bench.apps (Tornado's native handler, the
    # C ceiling): never the "best peer" a scenario's ratios are taken against.
    reference: bool = False
    build_ceiling: bool = False  # compile bench/ceiling/hello.c first (ceiling_binary())
    unavailable: str = ""  # cannot be installed or run here: why (shown as n/a)

    @property
    def import_name(self) -> str | None:
        return self.module or self.package

    def command(self, app: str, port: int, workers: int = 1,
                pidlog: str | None = None) -> list[str]:
        subst = {"app": f"bench.apps:{app}", "port": str(port), "host": HOST,
                 "ceiling": str(CEILING_BINARY), "root": str(ROOT),
                 "python": sys.executable, "bench": str(BENCH), "workers": str(workers),
                 "pidlog": pidlog or os.devnull}
        argv = self.multi_argv if workers > 1 else self.argv
        assert argv is not None
        return [a.format(**subst) for a in argv]


# The two-process Tornado line: tornado_forked() below, started as
# `python -c TORNADO_FORKED ARGS` so that bench/tornado_native.py stays single-process.
TORNADO_FORKED = ("import sys; from bench.catalogue import tornado_forked; "
                  "tornado_forked(sys.argv[1:])")


# pyuwsgi (uWSGI from PyPI) installs a `uwsgi` script beside its interpreter; calling
# pyuwsgi.run() from the benchmark's own python is the same program.
UWSGI = ("{python}", "-c", "import sys, pyuwsgi; sys.argv[0] = \"uwsgi\"; sys.exit(pyuwsgi.run())")
ONE_PROCESS_NA = "one process only here: no multi-process mode in this benchmark"

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
           hello_only=True, reference=True,
           note="reference line: Tornado's own RequestHandler hello, not WSGI; "
                "hello scenarios only. With N workers: `tornado.netutil.bind_sockets`, "
                "then `tornado.process.fork_processes(N)`, every child serving the "
                "shared socket"),
    Server("granian", "granian",
           ("{python}", "-m", "granian", "--interface", "wsgi", "--workers", "1",
            "--host", "{host}", "--port", "{port}", "{app}"),
           multi_na=ONE_PROCESS_NA,
           note="Rust (hyper + tokio): a master plus one worker process, the worker's "
                "defaults (1 runtime thread, a pool of blocking threads calling the app)"),
    Server("bjoern", "bjoern",
           ("{python}", "{bench}/peers.py", "bjoern", "{app}", "--host", "{host}",
            "--port", "{port}"),
           multi_na=ONE_PROCESS_NA,
           note="C (libev, http-parser), one process, one thread: `bjoern.run(app, host, "
                "port)`; building it needs libev-dev"),
    Server("meinheld", "meinheld",
           ("{python}", "{bench}/peers.py", "meinheld", "{app}", "--host", "{host}",
            "--port", "{port}"),
           multi_na=ONE_PROCESS_NA,
           note="C (picoev, greenlets), one process: `server.listen((host, port))`, "
                "`server.run(app)`, access log off. Its keep-alive is off by default (it "
                "answers `Connection: close`), as here. meinheld 1.0.2 requires "
                "greenlet<0.5, which does not build on Python 3.11, so it is installed "
                "with `pip install --no-deps meinheld` beside a current greenlet"),
    Server("fastwsgi", "fastwsgi",
           ("{python}", "{bench}/peers.py", "fastwsgi", "{app}", "--host", "{host}",
            "--port", "{port}"),
           multi_na=ONE_PROCESS_NA,
           note="C (libuv, llhttp), one process: `fastwsgi.run(wsgi_app=app, host=host, "
                "port=port)`"),
    Server("socketify", "socketify",
           ("{python}", "-m", "socketify", "{app}", "--interface", "wsgi", "-h", "{host}",
            "-p", "{port}", "-w", "1", "--disable-listen-log", "true"),
           multi_na=ONE_PROCESS_NA,
           note="C++ (uWebSockets via cffi), one process"),
    Server("uwsgi", "pyuwsgi",
           UWSGI + ("--http11-socket", "{host}:{port}", "--module", "{app}",
                    "--pythonpath", "{root}", "--processes", "1", "--disable-logging"),
           multi_na=ONE_PROCESS_NA,
           note="uWSGI from PyPI (pyuwsgi) with its own HTTP/1.1 parser in the worker "
                "(`--http11-socket`, which keeps connections alive), no master, one "
                "process with one core (one request at a time), listen backlog 100 "
                "(its default)"),
    Server("c-ceiling", None, ("{ceiling}", "--host", "{host}", "--port", "{port}"),
           multi_na="a single-threaded C loop", hello_only=True, reference=True,
           build_ceiling=True,
           note="reference line: bench/ceiling/hello.c, one C epoll loop answering a fixed "
                "`Hello World!` to every request (keep-alive aware), compiled with "
                "`gcc -O2` into bench/ceiling/build/ on first use: what the machine, "
                "loopback and wrk allow on one core; hello scenarios only"),
]}


# --------------------------------------------------------------------------- the C ceiling

CEILING_SOURCE = BENCH / "ceiling" / "hello.c"
CEILING_BINARY = BENCH / "ceiling" / "build" / "hello"


def ceiling_binary() -> Path:
    """bench/ceiling/build/hello, compiled from hello.c with gcc if missing or older than
    the source. Raises RuntimeError (with gcc's message) if that fails."""
    if (CEILING_BINARY.exists()
            and CEILING_BINARY.stat().st_mtime >= CEILING_SOURCE.stat().st_mtime):
        return CEILING_BINARY
    CEILING_BINARY.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["gcc", "-O2", "-Wall", "-o", str(CEILING_BINARY), str(CEILING_SOURCE)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise RuntimeError(f"cannot run gcc: {exc}") from None
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    return CEILING_BINARY


def tornado_forked(argv: list[str]) -> None:
    """Tornado's native hello (bench/tornado_native.py's handler) in N processes: bind the
    socket, ``tornado.process.fork_processes(N)``, every child serves the shared socket
    on its own IOLoop and appends ``<pid>`` to --pid-log for every request."""
    import asyncio

    import tornado.httpserver
    import tornado.netutil
    import tornado.process
    import tornado.web

    from bench.tornado_native import HelloHandler, serve_until_signalled

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
        await serve_until_signalled(server)

    asyncio.run(serve())  # a clean exit: fork_processes does not restart the child


# --------------------------------------------------------------------------- who runs where


def multi_cpus(args) -> str:
    """taskset CPU list of multi-worker servers: the server's and wrk's CPU together."""
    return ",".join(str(c) for c in sorted({args.server_cpu, args.client_cpu}))


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
    if server.unavailable:
        return f"unavailable here: {server.unavailable}"
    if scenario.workers > 1 and server.multi_argv is None:
        return server.multi_na or "no multi-process mode"
    if server.needs_option and server.needs_option not in wsgiloop_help().split():
        return (f"this wsgiloop has no {server.needs_option} (`wsgiloop --help`): its only "
                "accept mode is one listening socket shared by the workers, each polling "
                "it with EPOLLEXCLUSIVE")
    return None


# --------------------------------------------------------------------------- issue 11's targets


@dataclass(frozen=True)
class Target:
    """One of issue 11's performance targets: wsgiloop's Req/s in ``scenario`` at least
    ``factor`` x ``peer``'s (same run), and optionally a p99 and a worker-RSS bound."""
    scenario: str
    peer: str
    factor: float
    max_p99_ms: float | None = None
    max_worker_rss_mib: float | None = None

    @property
    def text(self) -> str:
        words = [f"≥ {self.factor:g}× {self.peer}" if self.factor != 1 else f"≥ {self.peer}"]
        if self.max_p99_ms is not None:
            words.append(f"p99 ≤ {self.max_p99_ms:g} ms")
        if self.max_worker_rss_mib is not None:
            words.append(f"worker RSS ≤ {self.max_worker_rss_mib:g} MiB")
        return ", ".join(words)


TARGETS: list[Target] = [
    Target("hello", "bjoern", 0.8),
    Target("hello-close", "c-ceiling", 0.9),
    Target("stream-256k", "fastwsgi", 1.0),
    Target("post-64k", "granian", 0.8),
    Target("flask", "fastwsgi", 1.0),
    Target("hello-1000c", "bjoern", 0.8, max_p99_ms=40, max_worker_rss_mib=30),
]
# The seventh, native hello >= WSGI hello and >= 10x Tornado's native hello, is measured
# by bench/native.py.
