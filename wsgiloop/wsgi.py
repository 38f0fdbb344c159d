"""The PEP 3333 gateway: runs a WSGI application for each request a connection hands over.

Promises:

* the environ carries every key PEP 3333 requires; ``PATH_INFO`` is percent-decoded
  and presented as latin-1, so the raw bytes survive; ``QUERY_STRING`` is raw;
* ``wsgi.input`` holds exactly the request body, received before the application runs
  (``wsgi.input_terminated`` is true); an ``Expect: 100-continue`` body is fetched, and
  ``100 Continue`` sent, when the application first reads it;
* ``start_response`` follows the exc_info rules, may be called late (during iteration),
  and returns a working ``write()`` callable;
* ``wsgi.file_wrapper`` responses over a real file go out with ``sendfile``;
* the response is streamed with back-pressure: iteration pauses while the client's
  write buffer is above its high-water mark, so a slow reader never makes the server
  hold a large response in memory (the ``write()`` callable waits likewise on worker
  threads; on the loop thread it cannot wait, and what it is given is queued); a client
  that takes nothing for ``send_timeout`` loses the connection, and the iterable is
  closed;
* the iterable's ``close()`` is always called, also when the client has gone;
* an exception in the application, or an invalid status or header, gives a 500 with no
  traceback to the client and the full traceback in the error log.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from . import __version__
from .http import ProtocolError
from .http.hosts import host_name
from .http.proxies import TrustedProxies, resolve_forwarded
from .http.response import error_response
from .ioloop import IOLoop
from .server import Request, Responder
from .threadbridge import LoopBridge

log = logging.getLogger("wsgiloop.error")



class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks; the gateway sends real files
    with ``sendfile`` instead of iterating."""

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            block = read(self.block_size)
            if not block:
                return
            yield block

    def fileno(self) -> int | None:
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None


class _EmptyInput:
    """``wsgi.input`` for a request without a body."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readlines(self, hint: int = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Iterator[bytes]:
        return iter(())


class _DeferredInput:
    """``wsgi.input`` for an ``Expect: 100-continue`` request: the first read asks the
    connection for the body (sending ``100 Continue``), then reads from it."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._body: Any = None

    def _fetch(self) -> Any:
        if self._body is None:
            self._request.read_body()
            self._body = self._request.body or io.BytesIO(b"")
        return self._body

    def read(self, size: int = -1) -> bytes:
        return self._fetch().read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._fetch().readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._fetch().readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._fetch())


_EMPTY_INPUT = _EmptyInput()
_SERVER_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_header_keys: dict[str, str] = {}


def _environ_key(name: str) -> str:
    """``HTTP_*`` key of a header name; "" for a name with "_", which is dropped.

    ``X_Forwarded_For`` and ``X-Forwarded-For`` would both become
    ``HTTP_X_FORWARDED_FOR``; a proxy that strips only the dashed spelling would let a
    client forge it, so names with underscores do not reach the application.
    """
    key = _header_keys.get(name)
    if key is None:
        key = "" if "_" in name else "HTTP_" + name.upper().replace("-", "_")
        if len(_header_keys) < 1024:
            _header_keys[name] = key
    return key


class _WorkerThreads:
    """Up to ``limit`` daemon threads, started on demand, running submitted calls.

    Daemon threads, because one may be waiting on a client when the process exits.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], Any]) -> None:
        self._queue.put(call)
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._limit:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"wsgiloop-worker-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            call = self._queue.get()
            with self._lock:
                self._idle -= 1
            try:
                call()
            except Exception:
                log.exception("unhandled error on a worker thread")
            call = None  # not kept (with its response and connection) while idle


class _LoopProxy:
    """The responder for a response produced on a worker thread.

    Every call is carried out on the loop thread and the worker waits for it, so errors
    (an invalid header, say) come back to the worker as they would on the loop; ``write``
    returns only once the stream is back under its high-water mark, which is how a
    worker feels back-pressure.  If the client goes away, every wait ends at once and
    ``client_gone`` turns true; the worker then stops and closes the iterable itself, so
    ``on_abort`` callbacks are not needed here.
    """

    def __init__(self, responder: Responder) -> None:
        self._responder = responder
        self._bridge = LoopBridge(responder.loop)
        responder.on_abort(self._bridge.cancel)  # on the loop thread, before the worker starts

    @property
    def head_sent(self) -> bool:
        return self._responder.head_sent

    @property
    def client_gone(self) -> bool:
        return self._bridge.cancelled or self._responder.client_gone

    @property
    def loop(self) -> IOLoop:
        return self._responder.loop

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.start(status, headers)))

    def write(self, data: bytes) -> bool:
        def action(done: Callable[..., None], fail: Callable[..., None]) -> None:
            responder = self._responder
            if responder.client_gone or responder.write(data):
                done(True)
            else:
                responder.when_writable(done)

        self._bridge.call(action)
        return True

    def write_file(self, fd: int, offset: int, count: int) -> bool:
        def action(done: Callable[..., None], fail: Callable[..., None]) -> None:
            if self._responder.write_file(fd, offset, count):
                self._responder.when_flushed(lambda: done(True))
            else:
                done(False)

        return bool(self._bridge.call(action))

    def when_flushed(self, callback: Callable[[], Any]) -> None:
        callback()  # write_file already waited for the flush

    def when_writable(self, callback: Callable[[], Any]) -> None:
        callback()  # write already waited for the drain

    def on_abort(self, callback: Callable[[], Any]) -> None:
        """Not needed: the worker notices ``client_gone`` and cleans up itself."""

    def respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.respond(status, headers, body)))

    def finish(self) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.finish()))

    def abort(self) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.abort()))


class WSGIGateway:
    """The request delegate that serves one WSGI application.

    With ``threads=0`` the application runs on the loop thread, except for requests whose
    body waits on ``Expect: 100-continue``: those run on up to 4 worker threads, so that
    waiting for the body never stalls the loop.  With ``threads=N`` every request runs on
    a pool of N threads, while the loop does all socket I/O.  Because of them the application can be
    called from two threads at once, and ``wsgi.multithread`` says so by default.
    ``errors`` is the stream behind ``wsgi.errors``.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], *, root_path: str = "",
                 multithread: bool = True, multiprocess: bool = False,
                 errors: Any = None, threads: int = 0, track_requests: bool = False,
                 trusted_proxies: TrustedProxies | None = None) -> None:
        self.app = app
        #: Peers whose Forwarded / X-Forwarded-* headers are believed (None: nobody's).
        self.trusted_proxies = trusted_proxies
        #: 0: run the app on the loop thread; N: run every request on a pool of N threads.
        self.threads = threads
        self.max_threads = threads or 4
        self._worker_threads: _WorkerThreads | None = None
        #: With ``track_requests``: thread ident -> (start time, request line) while the
        #: application runs, for a watchdog to find requests that take too long.
        self.running: dict[int, tuple[float, str]] | None = {} if track_requests else None
        # A WSGI string: the UTF-8 bytes of the configured text, as latin-1 (PEP 3333),
        # like the percent-decoded PATH_INFO it is compared with.
        self.root_path = root_path.rstrip("/").encode("utf-8").decode("latin-1")
        self._base_environ = {
            "SCRIPT_NAME": self.root_path,
            "wsgi.version": (1, 0),
            "wsgi.errors": errors if errors is not None else sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "SERVER_SOFTWARE": f"wsgiloop/{__version__}",
        }

    def _connection_environ(self, request: Request) -> dict[str, Any]:
        """The environ keys that stay the same for every request on one connection."""
        environ = self._base_environ.copy()
        environ["wsgi.url_scheme"] = request.scheme
        sockname = request.sockname
        if isinstance(sockname, tuple):
            environ["SERVER_NAME"] = sockname[0]
            environ["SERVER_PORT"] = str(sockname[1])
        else:
            environ["SERVER_NAME"] = host_name(request.head.host or "localhost")
            environ["SERVER_PORT"] = "443" if request.scheme == "https" else "80"
        peer = request.peer
        if isinstance(peer, tuple):
            environ["REMOTE_ADDR"] = peer[0]
            environ["REMOTE_PORT"] = str(peer[1])
        else:
            environ["REMOTE_ADDR"] = ""
        request.connection_data["wsgi.environ"] = environ
        return environ

    def build_environ(self, request: Request) -> dict[str, Any]:
        head = request.head
        base = request.connection_data.get("wsgi.environ")
        if base is None:
            base = self._connection_environ(request)
        environ = base.copy()
        path = head.path
        if "%" in path:
            path = unquote_to_bytes(path).decode("latin-1")
        root = self.root_path
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root):]
        environ["REQUEST_METHOD"] = head.method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = head.query
        environ["RAW_URI"] = head.target
        environ["SERVER_PROTOCOL"] = head.version
        header_keys = _header_keys
        for name, value in head.headers:
            key = header_keys.get(name)
            if key is None:
                key = _environ_key(name)
            if not key:
                continue
            if key == "HTTP_CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key == "HTTP_CONTENT_LENGTH":
                continue
            elif key in environ:
                # RFC 9110 5.3: repeated fields combine with commas (cookies with "; ").
                sep = "; " if key == "HTTP_COOKIE" else ","
                environ[key] = environ[key] + sep + value
            else:
                environ[key] = value
        if head.host is not None:
            environ["HTTP_HOST"] = head.host
        trusted = self.trusted_proxies
        if trusted is not None and ("HTTP_FORWARDED" in environ or "HTTP_X_FORWARDED_FOR"
                                    in environ or "HTTP_X_FORWARDED_PROTO" in environ
                                    or "HTTP_X_FORWARDED_HOST" in environ) \
                and trusted.trusts(request.peer):
            client, scheme, host = resolve_forwarded(
                trusted, environ.get("HTTP_FORWARDED"), environ.get("HTTP_X_FORWARDED_FOR"),
                environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("HTTP_X_FORWARDED_HOST"))
            if client:
                environ["REMOTE_ADDR"] = client
            if scheme:
                environ["wsgi.url_scheme"] = scheme
            if host:
                environ["HTTP_HOST"] = host
        if request.body_deferred:
            environ["wsgi.input"] = _DeferredInput(request)
            environ["CONTENT_LENGTH"] = str(head.content_length) if head.content_length else ""
        elif request.body is not None:
            environ["wsgi.input"] = request.body
            environ["CONTENT_LENGTH"] = str(request.body_length)
        else:
            environ["wsgi.input"] = _EMPTY_INPUT
            environ["CONTENT_LENGTH"] = "0" if head.content_length == 0 else ""
        environ.setdefault("CONTENT_TYPE", "")
        return environ

    def __call__(self, request: Request, responder: Responder) -> None:
        if request.head.target == "*":
            # "OPTIONS *" asks about the server, and has no PATH_INFO an app could route.
            responder.respond("200 OK", [("Allow", _SERVER_METHODS)], b"")
            return
        if request.body_deferred or self.threads:
            # On a worker thread: with --threads always; otherwise for Expect:
            # 100-continue, whose body comes only when the app reads it, so the app must
            # be able to wait for it -- never on the loop.
            proxy = _LoopProxy(responder)
            self._threads().submit(_Response(self, request, proxy).run)
        else:
            _Response(self, request, responder).run()

    def _threads(self) -> _WorkerThreads:
        if self._worker_threads is None:
            self._worker_threads = _WorkerThreads(self.max_threads)
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
        the loop thread, so data is queued; prefer yielding from the iterable)."""
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        self._ensure_started()
        self.responder.write(data)

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
        environ = self.request.environ = self.gateway.build_environ(self.request)
        try:
            result = self.gateway.app(environ, self.start_response)
            self.result = result
            if type(result) is list or type(result) is tuple:
                self.result = None  # nothing to close()
                self._send_sequence(result)
                return
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
                self._ensure_started()
                if responder.client_gone:
                    self._close()
                    return
                if not responder.write(chunk):
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
