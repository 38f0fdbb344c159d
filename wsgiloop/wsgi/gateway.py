"""The request delegate that serves one WSGI application: :class:`WSGIGateway` calls the
application for each request (on the loop thread, or on a worker thread) and
:class:`_Response` streams its result back with back-pressure."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..delegate import Request, Responder
from ..http import ProtocolError
from ..http.proxies import TrustedProxies
from ..http.response import error_response
from .environ import EnvironBuilder, FileWrapper
from .threads import ThreadResponder, WorkerThreads

log = logging.getLogger("wsgiloop.error")

_SERVER_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class WSGIGateway:
    """The request delegate that serves one WSGI application.

    With ``threads=0`` the application runs on the loop thread, except for requests whose
    body waits on ``Expect: 100-continue``: those run on up to 4 worker threads, so that
    waiting for the body never stalls the loop.  With ``threads=N`` every request runs on
    a pool of N threads, while the loop does all socket I/O.  Because of them the
    application can be called from two threads at once, and ``wsgi.multithread`` says so
    by default.
    ``errors`` is the stream behind ``wsgi.errors``.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], *, root_path: str = "",
                 multithread: bool = True, multiprocess: bool = False,
                 errors: Any = None, threads: int = 0, track_requests: bool = False,
                 trusted_proxies: TrustedProxies | None = None) -> None:
        self.app = app
        #: 0: run the app on the loop thread; N: run every request on a pool of N threads.
        self.threads = threads
        self.max_threads = threads or 4
        self._worker_threads: WorkerThreads | None = None
        #: With ``track_requests``: thread ident -> (start time, request line) while the
        #: application runs, for a watchdog to find requests that take too long.
        self.running: dict[int, tuple[float, str]] | None = {} if track_requests else None
        self.environ = EnvironBuilder(root_path=root_path, errors=errors,
                                      multithread=multithread, multiprocess=multiprocess,
                                      trusted_proxies=trusted_proxies)

    def build_environ(self, request: Request) -> dict[str, Any]:
        return self.environ.build(request)

    def __call__(self, request: Request, responder: Responder) -> None:
        if request.head.target == "*":
            # "OPTIONS *" asks about the server, and has no PATH_INFO an app could route.
            responder.respond("200 OK", [("Allow", _SERVER_METHODS)], b"")
            return
        if request.body_deferred or self.threads:
            # On a worker thread: with --threads always; otherwise for Expect:
            # 100-continue, whose body comes only when the app reads it, so the app must
            # be able to wait for it -- never on the loop.
            proxy = ThreadResponder(responder)
            self._threads().submit(_Response(self, request, proxy).run)
        elif self.running is not None:
            _Response(self, request, responder).run()
        else:
            _Response(self, request, responder)._run()

    def _threads(self) -> WorkerThreads:
        if self._worker_threads is None:
            self._worker_threads = WorkerThreads(self.max_threads)
        return self._worker_threads


class _Response:
    """One application call and the streaming of its result, on the loop thread."""

    __slots__ = ("gateway", "request", "responder", "result", "iterator",
                 "status", "headers", "started", "closed")

    def __init__(self, gateway: WSGIGateway, request: Request, responder: Responder) -> None:
        self.gateway = gateway
        self.request = request
        self.responder = responder
        self.result: Any = None
        self.iterator: Iterator[bytes] | None = None
        self.status: str | None = None
        self.headers: list[tuple[str, str]] | None = None
        self.started = False  # responder.start() called with the current status
        self.closed = False

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.responder.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(headers, list):
            raise TypeError("response headers must be a list")
        self.status = status
        self.headers = headers
        self.started = False
        return self.write

    def _ensure_started(self) -> None:
        if not self.started:
            if self.status is None:
                raise AssertionError("the application returned data before start_response")
            self.responder.start(self.status, self.headers)  # type: ignore[arg-type]
            self.started = True

    def write(self, data: bytes) -> None:
        """The ``write()`` callable: sends at once (blocking semantics are not available on
        the loop thread, so data is queued; prefer yielding from the iterable).  Raises
        :class:`ConnectionAbortedError` once the client has gone, so that an application
        writing in a loop stops (as a socket error stops it under gunicorn)."""
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        self._ensure_started()
        if not self.responder.write(data) and self.responder.client_gone:
            raise ConnectionAbortedError("the client has gone")

    def run(self) -> None:
        running = self.gateway.running
        if running is not None:
            head = self.request.head
            running[threading.get_ident()] = (time.monotonic(), f"{head.method} {head.target}")
            try:
                self._run()
            finally:
                running.pop(threading.get_ident(), None)
        else:
            self._run()

    def _run(self) -> None:
        """Call the application and answer with what it returns."""
        request = self.request
        gateway = self.gateway
        environ = request.environ = gateway.environ.build(request)
        try:
            result = gateway.app(environ, self.start_response)
            if (type(result) is list or type(result) is tuple) and len(result) == 1 \
                    and type(result[0]) is bytes and self.status is not None \
                    and not self.responder.head_sent:
                # Nothing to close(); the usual one-piece body leaves in one write.
                self.responder.respond(self.status, self.headers, result[0])  # type: ignore[arg-type]
                return
        except Exception as exc:
            self._fail(exc)
            return
        self._answer(result)

    def _answer(self, result: Any) -> None:
        """Answer with the application's ``result``, unless a one-piece list or tuple
        (which :meth:`_run` sends itself)."""
        try:
            if type(result) is list or type(result) is tuple:
                self._send_sequence(result)
                return
            self.result = result
            if isinstance(result, FileWrapper) and self._send_file(result):
                return
            self.iterator = iter(result)
        except Exception as exc:
            self._fail(exc)
            return
        self.responder.on_abort(self._on_client_gone)
        self._pump()

    def _send_sequence(self, chunks: list[bytes] | tuple[bytes, ...]) -> None:
        for chunk in chunks:
            if type(chunk) is not bytes:
                raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
        if self.status is None:
            raise AssertionError("the application returned without calling start_response")
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self.responder.head_sent:  # the app used write(): keep streaming
            self._ensure_started()
            self.responder.write(body)
            self.responder.finish()
        else:
            self.responder.respond(self.status, self.headers, body)  # type: ignore[arg-type]

    def _send_file(self, wrapper: FileWrapper) -> bool:
        fd = wrapper.fileno()
        if fd is None:
            return False
        try:
            offset = wrapper.filelike.tell()
            size = os.fstat(fd).st_size
        except (OSError, AttributeError, io.UnsupportedOperation):
            return False
        self._ensure_started()
        if not self.responder.write_file(fd, offset, max(0, size - offset)):
            return False  # chunked framing: the file goes through iteration
        self.responder.on_abort(self._close)
        self.responder.when_flushed(self._finish_file)
        return True

    def _finish_file(self) -> None:
        self._close()
        self.responder.finish()

    def _pump(self) -> None:
        """Iterate until done or until the client's buffer is full; resume on drain."""
        responder = self.responder
        iterator = self.iterator
        assert iterator is not None
        try:
            for chunk in iterator:
                if type(chunk) is not bytes:
                    raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
                if not chunk:
                    continue
                if not self.started:
                    self._ensure_started()
                if not responder.write(chunk):
                    # (Also when the client has gone: _resume then closes the iterable.)
                    responder.when_writable(self._resume)
                    return
            self._ensure_started()
        except Exception as exc:
            self._fail(exc)
            return
        self._close()
        responder.finish()

    def _resume(self) -> None:
        if self.responder.client_gone:
            self._close()
            return
        running = self.gateway.running
        if running is not None:
            head = self.request.head
            running[threading.get_ident()] = (time.monotonic(), f"{head.method} {head.target}")
            try:
                self._pump()
            finally:
                running.pop(threading.get_ident(), None)
        else:
            self._pump()

    def _on_client_gone(self) -> None:
        self._close()

    def _fail(self, exc: Exception) -> None:
        request = self.request
        self._close()
        protocol_error = request.protocol_error
        if isinstance(exc, ProtocolError):
            protocol_error = exc
        if self.responder.client_gone:
            return
        if self.responder.head_sent:
            log.error("error in the application after the response started; "
                      "closing the connection", exc_info=exc)
            self.responder.abort()
            return
        if protocol_error is not None:
            status, headers, body = error_response(protocol_error.status,
                                                   protocol_error.detail, close=True)
        else:
            log.error("error handling %s %s", request.head.method, request.head.target,
                      exc_info=exc)
            status, headers, body = error_response(500)
        self.responder.respond(status, headers, body)

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        close = getattr(self.result, "close", None)
        # An iterable that refers to start_response (a generator calling it, say) and is
        # referred to from here is a cycle through the request and its connection: cut.
        self.result = self.iterator = None
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("error in the close() of the application's iterable")
