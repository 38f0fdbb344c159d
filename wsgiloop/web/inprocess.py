"""An :class:`~wsgiloop.web.Application` called as a WSGI application.

``call_as_wsgi(application, environ, start_response)`` builds the request from the
environ, runs the handler against a responder that collects the response, and returns
it to the WSGI caller.  This is how ``webtest.TestApp(application)`` tests handlers
in-process, and how the application runs under any WSGI server.

Promises and limits:

* routes match ``PATH_INFO`` (``SCRIPT_NAME`` is where the caller mounted the app);
* an async handler runs to completion on a private :class:`IOLoop` (one per thread,
  made on first use) before the call returns, so a handler that waits for another
  request (long polling) cannot work this way -- serve the application natively for
  that;
* a response is collected whole (``flush`` just buffers); files are read, not sent;
* a WSGI mount gets the caller's environ with ``SCRIPT_NAME`` extended by the prefix
  and ``PATH_INFO`` shortened, and its result is passed through untouched;
* a handler that cuts the connection (an error after flushing) raises RuntimeError to
  the WSGI caller, which is what a server turns into a cut connection.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..http import RequestHead
from ..ioloop import IOLoop
from .mount import WSGIMount

if TYPE_CHECKING:
    from .application import Application

__all__ = ["CollectingResponder", "call_as_wsgi"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "trailers",
                         "transfer-encoding", "upgrade"})
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_loops = threading.local()


def private_loop() -> IOLoop:
    """This thread's loop for running async handlers in WSGI mode."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.pid != os.getpid():  # none yet, or inherited through fork
        loop = _loops.loop = IOLoop(slow_callback_threshold=None)
    return loop


class _Head(RequestHead):
    """A request head made from an environ (what the parser makes from the wire)."""

    __slots__ = ()

    def __init__(self, environ: dict[str, Any]) -> None:
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        path_info = environ.get("PATH_INFO", "")
        self.path = quote(path_info.encode("latin-1"), safe=_PATH_SAFE)
        self.query = environ.get("QUERY_STRING", "")
        self.target = self.path + (f"?{self.query}" if self.query else "")
        self.version = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        headers = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers.append((key[5:].replace("_", "-").title(), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                headers.append((key.replace("_", "-").title(), value))
        self.headers = headers
        self.host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
        self.keep_alive = False  # the WSGI caller owns the connection
        self.expect_continue = False
        length = environ.get("CONTENT_LENGTH", "")
        self.content_length = int(length) if length.isdigit() else None
        self.chunked = False


class _Request:
    """A stand-in for :class:`wsgiloop.delegate.Request` built from an environ."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.head = _Head(environ)
        body = _read_body(environ)
        self.body = io.BytesIO(body) if body else None
        self.body_length = len(body)
        self.body_deferred = False
        self.protocol_error = None
        self.connection_data: dict[str, Any] = {}
        self.scheme = environ.get("wsgi.url_scheme", "http")
        try:
            port = int(environ.get("REMOTE_PORT") or 0)
        except ValueError:
            port = 0
        self.peer = (environ.get("REMOTE_ADDR", ""), port)
        self.sockname = (environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", ""))


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH", "")
    if length and length.isdigit():
        return stream.read(int(length)) if int(length) else b""
    if environ.get("wsgi.input_terminated"):
        return stream.read()
    return b""


class CollectingResponder:
    """The responder interface, collecting one whole response in memory."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.head_sent = False
        self.client_gone = False
        self.done = False
        self.aborted = False

    @property
    def loop(self) -> IOLoop:
        return private_loop()

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]

    def write(self, data: bytes) -> bool:
        if self.status is None:
            raise AssertionError("start() before write()")
        self.head_sent = True
        if data:
            self.chunks.append(data)
        return True

    def write_file(self, fd: int, offset: int, count: int) -> bool:
        self.head_sent = True
        while count > 0:
            block = os.pread(fd, min(count, 1 << 20), offset)
            if not block:
                break
            self.chunks.append(block)
            offset += len(block)
            count -= len(block)
        return True

    def when_writable(self, callback: Callable[[], Any]) -> None:
        callback()

    def when_flushed(self, callback: Callable[[], Any]) -> None:
        callback()

    def on_abort(self, callback: Callable[[], Any]) -> None:
        """The WSGI caller does not say when its client leaves."""

    def on_client_eof(self, callback: Callable[[], Any]) -> None:
        """Nor when it stops sending."""

    def respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.start(status, headers)
        code = int(status.split(None, 1)[0])
        if code >= 200 and code not in (204, 304) and \
                not any(k.lower() == "content-length" for k, _ in self.headers):
            self.headers.append(("Content-Length", str(len(body))))
        self.write(body)
        self.finish()

    def finish(self) -> None:
        self.head_sent = True
        self.done = True

    def abort(self) -> None:
        self.aborted = True
        self.done = True


def call_as_wsgi(application: Application, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve one WSGI call with ``application``; see the module docstring."""
    path_info: str = environ.get("PATH_INFO", "")
    try:
        path = path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        body = b"400 Bad Request\n"
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                           ("Content-Length", str(len(body)))])
        return [body]
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    rule, args, kwargs = application.resolve(host, path)
    if isinstance(rule.target, WSGIMount):
        return rule.target.call_wsgi(environ, start_response)
    request = _Request(environ)
    responder = CollectingResponder(request.head.method)
    handler = application.run_handler(rule, request, responder, path, args, kwargs)
    task = handler.task
    if task is not None and not task.done():
        responder.loop.run_until_complete(task)
    if responder.aborted:
        raise RuntimeError("the handler cut the response short")
    if not responder.done or responder.status is None:
        raise RuntimeError(f"{type(handler).__name__} did not finish its response")
    start_response(responder.status, responder.headers)
    code = int(responder.status.split(None, 1)[0])
    if request.head.method == "HEAD" or code in (204, 304) or code < 200:
        return []
    return responder.chunks
