"""The body of one worker process: settings in, an event loop serving until a signal.

:func:`run_worker` runs after fork, in the worker.  It loads the application (unless the
master preloaded it), serves the inherited sockets on a fresh IOLoop, and keeps the
worker's shared status current: a heartbeat each second, the request count, and a
request to retire once ``--max-requests`` or ``--max-rss`` is reached.

Signals in a worker: TERM stops gracefully (no new connections; requests in flight
finish and their responses say ``Connection: close``; idle keep-alive connections close
after a short grace; at most ``graceful_timeout``), INT and QUIT stop at once, USR1
reopens the log files.
"""

from __future__ import annotations

import logging
import os
import random
import resource
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .accesslog import make_access_logger
from .delegate import Request
from .http import HTTPLimits, parser_class
from .http.proxies import TrustedProxies
from .httpserver import HTTPServer
from .ioloop import IOLoop
from .logformat import ErrorLogRecords
from .metrics import Sampler, response_recorder
from .netutil import reuse_port_sibling
from .params import ConnectionParameters
from .request_hooks import PreRequest, post_request_caller
from .workers.hooks import Hooks, WorkerAborted
from .workers.worker import (
    EXIT_BOOT_ERROR,
    EXIT_REQUEST_TIMEOUT,
    READY,
    REQUEST_TIMEOUT,
    Worker,
)
from .wsgi import WSGIGateway

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("wsgiloop.error")

_IDLE_GRACE_SECONDS = 1.0


def connection_parameters(settings: Any) -> ConnectionParameters:
    """The connection layer's parameters from the settings table."""
    limits = HTTPLimits(
        max_request_line=settings.limit_request_line,
        max_header_count=settings.limit_request_fields,
        max_header_field_size=settings.limit_request_field_size,
        max_head_size=settings.limit_request_head,
        max_body_size=settings.max_body_size,
    )
    server_header = settings.server_header.encode("latin-1") if settings.server_header else None
    return ConnectionParameters(
        limits=limits,
        parser_class=parser_class(settings.parser),
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        body_timeout=settings.body_timeout,
        body_min_rate=settings.body_min_rate,
        send_timeout=settings.send_timeout,
        spool_threshold=settings.spool_threshold,
        spool_dir=settings.spool_dir,
        server_header=server_header,
        proxy_protocol=settings.proxy_protocol,
        trusted_proxies=trusted_proxies(settings),
        proxy_protocol_peers=TrustedProxies(settings.proxy_allow_ips)
        if settings.proxy_allow_ips else None,
    )


def trusted_proxies(settings: Any) -> TrustedProxies:
    """The peers whose forwarding headers and PROXY headers are believed."""
    return TrustedProxies(settings.forwarded_allow_ips)


def spool_dir_problem(directory: str | None) -> str | None:
    """Why ``--spool-dir`` cannot take spooled request bodies, in one line; None if it can.

    It must be a directory in which this process (after any ``--user``) can create a
    temporary file.  For None, the system temporary directory is looked for now (later,
    without a descriptor to spare, :mod:`tempfile` would fail to find it) but a missing one
    is not an error: only bodies above ``--spool-threshold`` need it.
    """
    if directory is None:
        try:
            tempfile.gettempdir()
        except OSError:
            pass
        return None
    prefix = f"--spool-dir {directory}"
    try:
        os.stat(directory)
    except FileNotFoundError:
        return f"{prefix}: no such directory"
    except OSError as exc:
        return f"{prefix}: {_reason(exc)}"
    if not os.path.isdir(directory):
        return f"{prefix}: not a directory"
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"{prefix}: cannot create a file in it: {_reason(exc)}"
    return None


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def ssl_context(settings: Any, hooks: Hooks | None = None) -> ssl.SSLContext | None:
    """The TLS context for ``--certfile``/``--keyfile`` (and ``--ca-certs``, which makes
    client certificates required); None without a certificate.  An ``ssl_context`` hook
    is given the settings and a factory of that default context, and returns the one to
    use."""
    if not settings.certfile:
        return None
    import ssl  # only with a certificate: OpenSSL costs every worker megabytes

    if hooks is not None and "ssl_context" in hooks:
        custom = hooks.call("ssl_context", settings, lambda: _default_ssl_context(settings))
        if isinstance(custom, ssl.SSLContext):
            return custom
        log.error("the ssl_context hook returned %r, not an SSLContext; using the default",
                  custom)
    return _default_ssl_context(settings)


def _default_ssl_context(settings: Any) -> ssl.SSLContext:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if settings.ciphers:
        context.set_ciphers(settings.ciphers)
    context.load_cert_chain(settings.certfile, settings.keyfile)
    if settings.ca_certs:
        context.load_verify_locations(settings.ca_certs)
        context.verify_mode = ssl.VerifyMode(
            2 if settings.cert_reqs is None else settings.cert_reqs)
    context.set_alpn_protocols(["http/1.1"])
    return context


class CurrentErrorLog:
    """``wsgi.errors``: writes go to whatever stream the error log has now, so that
    reopening the log files (USR1) does not leave the application a closed file."""

    def write(self, text: str) -> None:
        error_stream().write(text)

    def writelines(self, lines: Any) -> None:
        error_stream().writelines(lines)

    def flush(self) -> None:
        error_stream().flush()


def _wsgi_errors(settings: Any) -> Any:
    return ErrorLogRecords() if settings.log_format == "json" else CurrentErrorLog()


def error_stream() -> Any:
    """The stream the error log writes to (for ``wsgi.errors`` and stack dumps)."""
    for handler in logging.getLogger("wsgiloop.error").handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            return stream
    return sys.stderr


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_worker(worker: Worker, settings: Any, sockets: list[socket.socket],
               load_app: Callable[[], Callable[..., Any]],
               reopen_logs: Callable[[], None] | None = None,
               hooks: Hooks | None = None, master: Any = None) -> int:
    """Serve in this (worker) process until told to stop; returns the exit status.

    ``hooks`` are gunicorn-style server hooks, ``master`` their ``server`` argument."""
    hooks = hooks if hooks is not None else Hooks()
    if "worker_abort" in hooks:
        # From the start (loading the application may be what hangs): the master sends
        # SIGABRT to a worker silent past --timeout, as gunicorn's does.
        def on_abort(signum: int, frame: Any) -> None:
            hooks.call("worker_abort", worker)
            raise WorkerAborted()  # unwinds through worker_exit; SIGKILL follows if caught

        signal.signal(signal.SIGABRT, on_abort)
    try:
        return _serve(worker, settings, sockets, load_app, reopen_logs, hooks)
    except WorkerAborted:
        return 1  # the master, which sent SIGABRT, says so in its log
    finally:
        hooks.call("worker_exit", master, worker)


def _serve(worker: Worker, settings: Any, sockets: list[socket.socket],
           load_app: Callable[[], Callable[..., Any]],
           reopen_logs: Callable[[], None] | None, hooks: Hooks) -> int:
    status = worker.status
    problem = spool_dir_problem(settings.spool_dir)
    if problem is not None:
        status.message = problem  # the master's start-up error: one line, exit status 2
        return EXIT_BOOT_ERROR
    try:
        app = load_app()
    except Exception as exc:
        status.message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, (ImportError, AttributeError, SyntaxError)) and \
                type(exc).__name__ != "AppLoadError":
            log.error("worker %d could not load the application", worker.age, exc_info=exc)
        return EXIT_BOOT_ERROR
    hooks.call("post_worker_init", worker)

    try:
        tls = ssl_context(settings, hooks)
    except OSError as exc:  # ssl.SSLError too
        status.message = f"cannot load the TLS certificate: {exc}"
        return EXIT_BOOT_ERROR
    native = _is_native(app)
    if settings.interface == "native" and not native:
        status.message = (f"--native: {type(app).__name__} is not a "
                          "wsgiloop.web.Application")
        return EXIT_BOOT_ERROR
    if not native and "pre_request" in hooks:
        app = PreRequest(app, hooks, worker)
    _raise_open_file_limit()
    loop = IOLoop(slow_callback_threshold=settings.slow_callback_threshold or None)
    gateway = WSGIGateway(app, root_path=settings.root_path, multithread=True,
                          multiprocess=settings.workers > 1, errors=_wsgi_errors(settings),
                          threads=settings.threads,
                          track_requests=bool(settings.request_timeout),
                          trusted_proxies=trusted_proxies(settings))
    delegate: Any = app if native and settings.interface != "wsgi" else gateway
    if settings.static:
        delegate = StaticFirst(settings.static, delegate)
    access = make_access_logger(settings)
    on_response = _response_counter(worker, settings, access,
                                     lambda reason: retire(reason, "max-requests"))
    recorder = response_recorder(worker.metrics, worker.statsd)
    if recorder is not None:
        on_response = _chain_responses(on_response, recorder)
    if "post_request" in hooks:
        on_response = _chain_responses(on_response, post_request_caller(hooks, worker))
    listening = list(sockets)
    if settings.reuse_port:
        listening += _own_sockets(sockets, settings.backlog)
    server = HTTPServer(loop, listening, connection_parameters(settings), delegate,
                        ssl_context=tls, on_response=on_response,
                        accept_batch=1 if settings.workers > 1 else 64,
                        max_connections=settings.worker_connections)
    stopping: dict[str, Any] = {"deadline": None}
    parent = os.getppid()

    def check_drained() -> None:
        busy = server.close_idle(grace=_IDLE_GRACE_SECONDS)
        if busy == 0 or loop.time() >= stopping["deadline"]:
            if busy:
                log.warning("worker %d: graceful timeout, closing %d connection(s)",
                            worker.age, busy)
            loop.stop()
        else:
            loop.call_later(0.05, check_drained)

    def stop_gracefully(reason: str) -> None:
        if stopping["deadline"] is not None:
            return
        log.info("worker %d (pid %d) stopping: %s", worker.age, os.getpid(), reason)
        stopping["deadline"] = loop.time() + settings.graceful_timeout
        server.stop_accepting()
        check_drained()

    def retire(reason: str, kind: str) -> None:
        """--max-requests or --max-rss reached: the master starts a replacement at once,
        and this worker takes no new request (each open connection gets its current
        response, with Connection: close) and exits when drained."""
        if status.state != READY:
            return
        worker.ask_to_be_replaced(reason, kind)
        # Now, not in stop_gracefully: after a response given from a callback, that runs
        # a loop pass later, and a connection accepted in between would be a new one
        # answered with Connection: close.
        server.stop_accepting()
        loop.call_soon(stop_gracefully, reason)  # not from inside the response's callback

    def on_signal(signum: int) -> None:
        if signum == signal.SIGTERM:
            stop_gracefully("TERM")
        elif signum == signal.SIGUSR1:
            if reopen_logs is not None:
                reopen_logs()
                worker.watch_stack_dumps(error_stream())
        else:
            hooks.call("worker_int", worker)
            loop.stop()

    rss_limit = settings.max_rss

    def heartbeat() -> None:
        status.beat()
        if os.getppid() != parent:
            stop_gracefully("the master has gone")
        elif rss_limit and status.state == READY:
            rss = _resident_bytes()
            if rss > rss_limit:
                retire(f"resident memory {rss >> 20} MiB passed --max-rss "
                       f"{rss_limit >> 20} MiB", "max-rss")
        loop.call_later(_heartbeat_interval(settings), heartbeat)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
        loop.add_signal_handler(signum, on_signal)
    if gateway.running is not None:
        _start_request_watchdog(worker, gateway.running, settings.request_timeout)
    server.start()
    heartbeat()
    sampler = Sampler(loop, server, worker.metrics, worker.statsd) \
        if recorder is not None else None
    if sampler is not None:
        sampler.start()
    status.state = READY
    try:
        loop.run_forever()
    finally:
        server.stop_accepting()
        server.close_all()
        if sampler is not None:
            sampler.stop()
        loop.close()
    return 0


def _own_sockets(shared: list[socket.socket], backlog: int) -> list[socket.socket]:
    """This worker's own SO_REUSEPORT listening sockets (``--reuse-port``).

    The worker keeps accepting on the shared sockets too: the kernel counts them in the
    group, and connections it puts there must still find a worker.
    """
    own = []
    for sock in shared:
        try:
            sibling = reuse_port_sibling(sock, backlog)
        except OSError as exc:
            log.warning("cannot open a SO_REUSEPORT socket beside %s: %s",
                        sock.getsockname(), exc)
            continue
        if sibling is not None:
            own.append(sibling)
    return own


class StaticFirst:
    """``--static PREFIX=DIR``: files under each prefix come from its directory (sendfile,
    ETag, Last-Modified, ranges, an hour of caching); everything else goes to the app."""

    def __init__(self, mappings: list[str], app_delegate: Any) -> None:
        import re

        from .web import Application
        from .web.static import StaticFileHandler

        self.app_delegate = app_delegate
        self.prefixes = []
        rules = []
        for mapping in mappings:
            prefix, _, directory = mapping.partition("=")
            prefix = "/" + prefix.strip("/")
            self.prefixes.append(prefix)
            rules.append((re.escape(prefix) + "/(.*)", StaticFileHandler,
                          {"path": directory, "max_age": 3600}))
        self.files = Application(rules)

    def __call__(self, request: Request, responder: Any) -> None:
        path = request.head.path
        for prefix in self.prefixes:
            if path.startswith(prefix + "/"):
                self.files(request, responder)
                return
        self.app_delegate(request, responder)


def _raise_open_file_limit() -> None:
    """Let the worker use as many descriptors as the hard limit allows: an event loop
    holding thousands of idle or long-polling connections needs one each."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


def _is_native(app: Any) -> bool:
    """True for a :class:`wsgiloop.web.Application` (only loaded if the app loaded it)."""
    web = sys.modules.get("wsgiloop.web")
    return web is not None and isinstance(app, web.Application)


def _heartbeat_interval(settings: Any) -> float:
    return min(1.0, settings.timeout / 4) if settings.timeout else 1.0


def _response_counter(worker: Worker, settings: Any,
                      access: Callable[[Request, int, int], None] | None,
                      retire: Callable[[str], None]
                      ) -> Callable[[Request, int, int], None] | None:
    """What the connections call after each response: access log and --max-requests
    (``retire`` is called once the limit is reached).

    None when neither is wanted, so a response costs nothing extra then.
    """
    limit = settings.max_requests
    if limit:
        limit += random.randint(0, settings.max_requests_jitter)
    if not limit:
        return access
    status = worker.status
    served = [0]

    def on_response(request: Request, code: int, length: int) -> None:
        if access is not None:
            access(request, code, length)
        served[0] += 1
        status.requests = served[0]
        if served[0] >= limit and status.state == READY:
            retire(f"served {served[0]} requests (--max-requests {limit})")

    return on_response


def _chain_responses(first: Callable[[Request, int, int], None] | None,
                     then: Callable[[Request, int, int], None]
                     ) -> Callable[[Request, int, int], None]:
    if first is None:
        return then

    def on_response(request: Request, code: int, length: int) -> None:
        first(request, code, length)
        then(request, code, length)
    return on_response


def _start_request_watchdog(worker: Worker, running: dict[int, tuple[float, str]],
                            limit: float) -> None:
    """A thread that ends the worker when one request runs longer than ``limit``."""

    def watch() -> None:
        while True:
            time.sleep(min(0.25, limit / 4))
            now = time.monotonic()
            for ident, (started, what) in list(running.items()):
                if now - started <= limit:
                    continue
                frame = sys._current_frames().get(ident)
                stack = "".join(traceback.format_stack(frame)) if frame else "(gone)\n"
                log.error("worker %d: request %r has run %.1fs, past --request-timeout %s; "
                          "its stack:\n%s", worker.age, what, now - started, limit, stack)
                worker.status.state = REQUEST_TIMEOUT
                logging.shutdown()
                os._exit(EXIT_REQUEST_TIMEOUT)

    threading.Thread(target=watch, name="wsgiloop-request-watchdog", daemon=True).start()
