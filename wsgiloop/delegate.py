"""The seam between a connection and what serves its requests: the :class:`Request` a
delegate is given, the :class:`Responder` it answers through, and the
:class:`RequestDelegate` itself.

1. ``delegate(request, responder)`` is called once per request, on the loop thread,
   with the whole body received -- except for ``Expect: 100-continue`` requests, whose
   body is fetched when the application first reads it: ``request.read_body()`` from a
   worker thread, or ``responder.receive_deferred_body()`` on the loop.
2. The delegate then calls, on the loop thread and in this order:
   ``responder.start(status, headers)`` once; ``write``/``write_file`` any number of
   times; and exactly one of ``finish()`` or ``abort()``.  It may do so at once or
   later (after waiting for ``when_writable``).
3. If the client goes away first, ``on_abort`` callbacks run; ``finish``/``abort`` are
   then harmless no-ops.
4. A client may shut its sending side once its requests are out (a half-close): every
   complete request it sent is still answered, in order, and the connection closes
   after the last answer; an incomplete one gets a plain close, as if the client had
   closed.  Until something is sent, TCP cannot tell a half-close from a close, so a
   client that closed is noticed only when the answer fails to go out -- except by a
   delegate that asks with ``on_client_eof`` (one waiting for events, not for its own
   work, may give up then with ``abort()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .http import ProtocolError, RequestHead
from .ioloop import IOLoop
from .threadbridge import LoopBridge

if TYPE_CHECKING:
    from .server import HTTPConnection


class Request:
    """A parsed request as the delegate sees it.

    ``body`` is a readable binary file positioned at 0 (``BytesIO`` or a temp file) and
    ``body_length`` its size; for a deferred ``100-continue`` body, call
    :meth:`read_body` first.
    """

    __slots__ = ("head", "body", "body_length", "peer", "sockname", "scheme", "start_time",
                 "_connection", "body_deferred", "protocol_error", "connection_data",
                 "environ", "response_status", "response_headers")

    def __init__(self, head: RequestHead, connection: HTTPConnection) -> None:
        self.head = head
        self.body: Any = None
        self.body_length = 0
        self.peer = connection.peer
        self.sockname = connection.sockname
        self.scheme = connection.scheme
        self.start_time = 0.0
        self._connection = connection
        self.body_deferred = False
        self.protocol_error: ProtocolError | None = None
        self.connection_data = connection.delegate_data
        #: The WSGI environ, once a gateway made one (for the access log's ``e`` atoms).
        self.environ: dict[str, Any] | None = None
        #: The response's status line and header fields, kept only while an access log
        #: (or another per-response callback) is at work.
        self.response_status: str | None = None
        self.response_headers: list[tuple[str, str]] | None = None

    def read_body(self) -> None:
        """Receive a deferred body now, sending ``100 Continue`` first.

        Runs on a worker thread, never on the loop thread (it waits for the loop).
        Raises :class:`ProtocolError` when the body breaks framing or limits or times out
        (the connection closes after the response), and :class:`ConnectionError` when the
        client has gone, or ended its input before the whole body.
        """
        if not self.body_deferred:
            return
        connection = self._connection
        if connection.loop.in_loop_thread():
            raise RuntimeError("read_body() would block the loop; run the app on a thread")

        def receive(done: Callable[..., None], fail: Callable[[BaseException], None]) -> None:
            connection.receive_deferred_body(
                self, lambda error: done() if error is None else fail(error))

        LoopBridge(connection.loop).call(receive)


class Responder(Protocol):
    """What a delegate answers through: :class:`HTTPConnection` on the loop thread, the
    WSGI gateway's proxy for a worker thread, and the native layer's in-process collector.

    Order of calls, for one request:

    * ``start(status, headers)`` fixes the status and headers (raising ``ValueError``
      for invalid ones) and sends nothing; it may be called again, with other values,
      only while ``head_sent`` is False (an application error before the first byte);
    * then ``write(data)`` and ``write_file(fd, offset, count)`` any number of times:
      the head goes out with the first of them;
    * then exactly one of ``finish()`` (complete) or ``abort()`` (cut the connection);
    * or, instead of all three, ``respond(status, headers, body)`` for a body held
      whole (head and body in one write; a missing Content-Length is added).

    ``write`` returns False when the producer is to wait for ``when_writable(callback)``
    before writing more: the write buffer is above its high-water mark, or the client
    has gone (``client_gone``; the callback then comes at once, and the producer that
    checks ``client_gone`` there stops).  ``write_file``
    returns False, sending nothing, when the response's framing cannot carry raw file
    bytes (chunked): the caller then sends the file through ``write``; for a response
    without a body (HEAD, 204, 304) it sends nothing and returns True.
    ``when_flushed(callback)`` runs once everything written so far has reached the
    socket.  ``on_abort(callback)`` runs if the client goes away before the response is
    complete (``client_gone`` is then True); after that ``finish``/``abort`` are no-ops.
    """

    @property
    def loop(self) -> IOLoop: ...

    @property
    def client_gone(self) -> bool: ...

    @property
    def head_sent(self) -> bool: ...

    def start(self, status: str, headers: list[tuple[str, str]]) -> None: ...

    def write(self, data: bytes) -> bool: ...

    def write_file(self, fd: int, offset: int, count: int) -> bool: ...

    def when_writable(self, callback: Callable[[], Any]) -> None: ...

    def when_flushed(self, callback: Callable[[], Any]) -> None: ...

    def on_abort(self, callback: Callable[[], Any]) -> None: ...

    def respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


class RequestDelegate(Protocol):
    """Serves one request: called once per request on the loop thread (see the module
    docstring), it answers through ``responder`` now or later."""

    def __call__(self, request: Request, responder: Responder) -> None: ...
