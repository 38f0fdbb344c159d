"""In-process stand-ins for the server side of the delegate seam (see the module docstring
of ``wsgiloop/server.py``): a real :class:`wsgiloop.delegate.Request` made by the real
parser from raw bytes, and a responder that collects the response in memory.

With them a delegate -- the WSGI gateway, a native ``Application`` -- runs without a
socket or a subprocess, and a test can make the client slow (a full write buffer) or
make it go away at any point.
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from wsgiloop.delegate import Request
from wsgiloop.http import END_OF_MESSAGE, NEED_DATA, RequestHead, RequestParser, ResponseFramer
from wsgiloop.http.response import CHUNKED
from wsgiloop.web.inprocess import CollectingResponder


def parsed_request(raw: bytes, *, peer: Any = ("10.0.0.1", 5555),
                   sockname: Any = ("127.0.0.1", 80), scheme: str = "http",
                   connection_data: dict | None = None) -> Request:
    """The :class:`Request` an ``HTTPConnection`` would hand its delegate for ``raw`` (one
    whole request): head from :class:`RequestParser`, body received (``body`` is None
    for a request without one, as on the wire).  Requests that share
    ``connection_data`` are on one connection."""
    parser = RequestParser()
    parser.feed(raw)
    head = parser.next_event()
    assert isinstance(head, RequestHead), head
    body = b""
    while True:
        event = parser.next_event()
        assert event is not NEED_DATA, "the request is incomplete"
        if event is END_OF_MESSAGE:
            break
        body += event  # type: ignore[operator]
    connection = SimpleNamespace(peer=peer, sockname=sockname, scheme=scheme,
                                 delegate_data={} if connection_data is None
                                 else connection_data)
    request = Request(head, connection)  # type: ignore[arg-type]
    if head.chunked or head.content_length:
        request.body = io.BytesIO(body)
        request.body_length = len(body)
    return request


class FakeResponder(CollectingResponder):
    """The responder interface in memory, for one response.

    ``start`` checks the status and headers as ``HTTPConnection.start`` does (it frames
    them with a real :class:`ResponseFramer`, kept as ``framer``, which raises ValueError
    for invalid ones); ``write_file`` refuses chunked framing as the connection does.
    With ``writable=False`` every ``write`` says the buffer is over its high-water mark,
    and ``when_writable`` callbacks wait for :meth:`drain`; :meth:`disconnect` is the
    client going away (``on_abort`` callbacks run, ``client_gone`` turns true).
    """

    def __init__(self, method: str = "GET", writable: bool = True,
                 version: str = "HTTP/1.1") -> None:
        super().__init__(method)
        self.version = version
        self.writable = writable
        self.framer: ResponseFramer | None = None
        self.abort_callbacks: list[Any] = []
        self.writable_callbacks: list[Any] = []
        self.files: list[tuple[int, int, int]] = []  # write_file calls: fd, offset, count

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        framer = ResponseFramer(self.method, self.version, True, status, headers, b"wsgiloop")
        super().start(status, headers)
        self.framer = framer

    def write(self, data: bytes) -> bool:
        if self.client_gone:
            return False  # nothing reaches a client that has gone
        super().write(data)
        return self.writable

    def write_file(self, fd: int, offset: int, count: int) -> bool:
        assert self.framer is not None, "start() before write_file()"
        if self.framer.mode == CHUNKED:
            return False
        self.files.append((fd, offset, count))
        return super().write_file(fd, offset, count)

    def on_abort(self, callback: Any) -> None:
        self.abort_callbacks.append(callback)

    def when_writable(self, callback: Any) -> None:
        if self.client_gone:
            callback()  # as HTTPConnection does: at once, for a client that has gone
        else:
            self.writable_callbacks.append(callback)

    def disconnect(self) -> None:
        self.client_gone = True
        for callback in self.abort_callbacks:
            callback()

    def drain(self) -> None:
        callbacks, self.writable_callbacks = self.writable_callbacks, []
        for callback in callbacks:
            callback()

    @property
    def code(self) -> int:
        assert self.status is not None
        return int(self.status.split()[0])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None
