"""WebSockets (RFC 6455) in native mode: :class:`WebSocketHandler`, routed like any
handler.

::

    class Echo(WebSocketHandler):
        def open(self):
            self.write_message("hello")

        async def on_message(self, message):      # str for text, bytes for binary
            await self.write_message(message, binary=isinstance(message, bytes))

        def on_close(self):
            ...

A GET with ``Upgrade: websocket`` is answered ``101 Switching Protocols`` and the
connection's socket is handed to the handler, with the frames the client sent behind its
request without waiting for the answer (they reach ``on_message`` after ``open``);
anything else is refused: 400 (not a WebSocket handshake), 426 (another protocol
version), 403 (:meth:`~WebSocketHandler.check_origin` refused the ``Origin``), 501 (not
served by wsgiloop's native server, e.g. called as a WSGI application).  A refusal says
``Connection: close`` and ends the connection, so those frames are never read as HTTP.

Promises:

* ``open``, ``on_message`` and the other callbacks run on the loop thread, one at a
  time and in order; an ``async def`` one is awaited before the next message is read
  (the client's bytes then wait in the kernel: a fast sender is slowed, not buffered).
  An exception in one is logged and closes the connection with 1011;
* :meth:`~WebSocketHandler.write_message` queues the message and returns a Future that
  resolves once it has been handed to the kernel (it fails with
  :class:`WebSocketClosedError` if the connection closes first).  Await it to go at the
  client's pace.  Messages queued without waiting may fill at most
  ``websocket_max_write_buffer`` bytes (each frame counted 192 bytes more, for what
  it costs besides its bytes): a message written while more than that is still
  unsent closes the connection instead (the client is too slow; a broadcast goes on to
  the others) and its Future fails.  Writing to a closed connection raises
  :class:`WebSocketClosedError`;
* a frame that breaks RFC 6455 closes the connection with 1002 (protocol error), 1007
  (invalid UTF-8 in text) or 1009 (a message over ``websocket_max_message_size``);
* :meth:`~WebSocketHandler.on_close` runs exactly once, however the connection ends;
  ``close_code`` and ``close_reason`` then hold what the client's close frame said (None
  if it sent none); ``on_finish`` runs after it;
* a graceful stop of the worker closes every WebSocket with 1001 (going away); they
  count as connections for ``--worker-connections``.

Application settings (a handler may override the property of the same name):
``websocket_ping_interval`` (seconds between pings; None, the default: no pings),
``websocket_ping_timeout`` (close when nothing came back for this long after a ping;
default three intervals, at least 30 s), ``websocket_max_message_size`` (default 10 MiB),
``websocket_max_write_buffer`` (default 1 MiB) and ``websocket_compression`` (None:
off; True or a dict of ``compression_level``, ``mem_level``, ``no_context_takeover``,
``max_window_bits``: per-message-deflate when the client offers it).
"""

from __future__ import annotations

import inspect
import json
import logging
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..aio import Task
from ..http.websocket import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameReader,
    PerMessageDeflate,
    WebSocketError,
    accept_key,
    close_code_allowed,
    close_payload,
    encode_frame,
    frame_header,
    negotiate_deflate,
    valid_key,
)
from ..ioloop import Future, Timer
from .errors import HTTPError
from .handler import RequestHandler

if TYPE_CHECKING:
    from ..iostream import IOStream

log = logging.getLogger("wsgiloop.error")

__all__ = ["WebSocketClosedError", "WebSocketHandler"]

_JOIN_LIMIT = 16384  # a larger payload is queued after its header, not copied into it
#: What a queued frame holds besides its bytes (a message's Future, the frame object, the
#: queues' entries: 190 bytes measured with tracemalloc, a pong's 45), counted against
#: max_write_buffer so that tiny messages and pongs are bounded in memory too.
_FRAME_COST = 192
_CLOSE_TIMEOUT = 5.0  # seconds for the close handshake, and for lingering after it


class WebSocketClosedError(Exception):
    """The WebSocket is closed (or closed while a write waited to be flushed)."""


def _has_token(values: list[str], token: str) -> bool:
    return any(part.strip().lower() == token for value in values for part in value.split(","))


class WebSocketHandler(RequestHandler):
    """One WebSocket connection; subclass it and define the callbacks you need.
    See the module docstring."""

    SUPPORTED_METHODS = ("GET",)

    #: The close code and reason the client sent (None: none, or not closed yet).
    close_code: int | None = None
    close_reason: str | None = None
    #: The subprotocol :meth:`select_subprotocol` chose, or None.
    selected_subprotocol: str | None = None
    _ws: _Connection | None = None

    # -- callbacks to override -------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """The connection is open (may be ``async def``); gets the route's arguments."""

    def on_message(self, message: str | bytes) -> Any:
        """A message came: ``str`` for text, ``bytes`` for binary (may be ``async def``)."""

    def on_ping(self, data: bytes) -> None:
        """A ping came (the pong is sent already)."""

    def on_pong(self, data: bytes) -> None:
        """A pong came."""

    def on_close(self) -> None:
        """The connection has closed (runs once)."""

    def check_origin(self, origin: str) -> bool:
        """True to accept a browser's ``Origin``: by default, only when its host (and
        port) is the request's ``Host``.  Override to allow other sites."""
        try:
            origin_host = urlsplit(origin).netloc.lower()
        except ValueError:
            return False
        return bool(origin_host) and origin_host == self.request.host.lower()

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """The subprotocol to speak, one of those the client offered (default: none)."""
        return None

    def get_compression_options(self) -> dict[str, Any] | None:
        """Per-message-deflate options (see :func:`~wsgiloop.http.websocket.
        negotiate_deflate`), or None to turn compression off.  Default: from the
        ``websocket_compression`` setting."""
        value = self.settings.get("websocket_compression")
        if value is None or value is False:
            return None
        return {} if value is True else dict(value)

    # -- settings ----------------------------------------------------------------------------

    @property
    def ping_interval(self) -> float | None:
        return self.settings.get("websocket_ping_interval")

    @property
    def ping_timeout(self) -> float:
        timeout = self.settings.get("websocket_ping_timeout")
        if timeout is None:
            return max(3 * (self.ping_interval or 0), 30.0)
        return timeout

    @property
    def max_message_size(self) -> int:
        return self.settings.get("websocket_max_message_size", 10 << 20)

    @property
    def max_write_buffer(self) -> int:
        return self.settings.get("websocket_max_write_buffer", 1 << 20)

    # -- sending -------------------------------------------------------------------------------

    def write_message(self, message: str | bytes | dict[str, Any], binary: bool = False
                      ) -> Future:
        """Send a message: text for ``str`` (and a dict, as JSON), binary for bytes with
        ``binary=True``.  Returns a Future resolved once it is flushed; see the module
        docstring for the limit on unflushed messages."""
        ws = self._ws
        if ws is None or ws.closing or ws.stream.closed:
            raise WebSocketClosedError("the WebSocket is closed")
        if isinstance(message, dict):
            message = json.dumps(message)
        if isinstance(message, str):
            payload = message.encode("utf-8")
        elif isinstance(message, (bytes, bytearray, memoryview)):
            payload = bytes(message)
            if not binary:
                payload.decode("utf-8")  # a text frame must be UTF-8: fail here, not there
        else:
            raise TypeError(f"write_message() takes str, bytes or dict, not "
                            f"{type(message).__name__}")
        return ws.send_message(BINARY if binary else TEXT, payload)

    def ping(self, data: bytes = b"") -> None:
        """Send a ping (at most 125 bytes of data)."""
        if len(data) > 125:
            raise ValueError("a ping carries at most 125 bytes")
        ws = self._ws
        if ws is None or ws.closing or ws.stream.closed:
            raise WebSocketClosedError("the WebSocket is closed")
        ws.send_control(PING, data)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the closing handshake (code 1000 unless given); :meth:`on_close` runs
        once the connection has closed."""
        code = 1000 if code is None else code
        if not close_code_allowed(code):
            raise ValueError(f"close code {code} may not be sent")
        if self._ws is not None:
            self._ws.close(code, reason or "")

    # -- the handshake ------------------------------------------------------------------------

    def get(self, *args: Any, **kwargs: Any) -> None:
        request = self.request
        headers = request.headers
        if not _has_token(headers.get_list("Upgrade"), "websocket"):
            raise HTTPError(400, reason="Expected a WebSocket upgrade")
        responder = self._responder
        if not callable(getattr(responder, "detach", None)):
            raise HTTPError(501, reason="WebSockets need wsgiloop's native server")
        if not _has_token(headers.get_list("Connection"), "upgrade") or \
                request.version != "HTTP/1.1":
            raise HTTPError(400, reason="Expected Connection: Upgrade over HTTP/1.1")
        if headers.get("Sec-WebSocket-Version", "") != "13":
            raise HTTPError(426, reason="Upgrade Required",
                            headers={"Sec-WebSocket-Version": "13"})
        key = headers.get("Sec-WebSocket-Key", "").strip()
        if not valid_key(key):
            raise HTTPError(400, reason="Invalid Sec-WebSocket-Key")
        origin = headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            raise HTTPError(403, "WebSocket origin %s refused", origin,
                            reason="Cross-origin WebSocket refused")

        lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept_key(key)}"]
        offered = [p.strip() for v in headers.get_list("Sec-WebSocket-Protocol")
                   for p in v.split(",") if p.strip()]
        if offered:
            chosen = self.select_subprotocol(offered)
            if chosen is not None:
                if chosen not in offered:
                    raise ValueError(f"select_subprotocol() chose {chosen!r}, not offered")
                self.selected_subprotocol = chosen
                lines.append(f"Sec-WebSocket-Protocol: {chosen}")
        deflate = None
        options = self.get_compression_options()
        if options is not None:
            negotiated = negotiate_deflate(headers.get_list("Sec-WebSocket-Extensions"),
                                           options)
            if negotiated is not None:
                deflate, extension = negotiated
                lines.append(f"Sec-WebSocket-Extensions: {extension}")
        for name, value in self._header_list():
            if name.lower() not in ("content-type", "content-length"):
                lines.append(f"{name}: {value}")  # cookies and the like set in prepare()

        raw = request.connection
        if responder.on_response is not None:
            raw.response_status = "101 Switching Protocols"
            raw.response_headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
        # A weak reference: the connection must not keep a closed handler alive (a cycle
        # that only the cycle collector would free, thousands at a time).
        going_away = weakref.WeakMethod(self._going_away)
        stream, early = responder.detach(lambda: (method := going_away()) and method())
        stream.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if responder.on_response is not None:
            responder.on_response(raw, 101, 0)
        # The HTTP side is over: nothing of RequestHandler's response machinery runs.
        self._headers_written = True
        self._finished = True
        self._ws = _Connection(self, stream, deflate)
        self._ws.start(args, kwargs, early)

    def _going_away(self) -> None:
        if self._ws is not None:
            self._ws.close(1001, "server shutting down")

    # -- running callbacks -----------------------------------------------------------------

    def _closed(self) -> None:
        """The connection has closed: on_close, then on_finish."""
        self.closed = True
        try:
            self.on_close()
        except Exception:
            log.exception("error in %s.on_close", type(self).__name__)
        self._complete()


class _Connection:
    """The WebSocket protocol on one stream, for one handler: reads frames, runs the
    handler's callbacks in order, writes frames, pings, closes."""

    def __init__(self, handler: WebSocketHandler, stream: IOStream,
                 deflate: PerMessageDeflate | None) -> None:
        self.handler = handler
        self.stream = stream
        self.loop = stream.loop
        self.deflate = deflate
        self.reader = FrameReader(handler.max_message_size, deflate)
        self.max_write_buffer = handler.max_write_buffer
        #: True once a close frame was sent or the connection failed: no more messages.
        self.closing = False
        self._busy = False  # an async callback is running: read nothing more
        self._input_ended = False  # the client stopped sending (no close frame)
        # Writes waiting to be flushed, in order (a list: an empty deque costs 600 bytes
        # a connection, and few writes wait at once).
        self._waiters: list[Future] = []
        self._queued = 0  # frames written since the write queue was last empty
        self._timer: Timer | None = None
        self._last_seen = self.loop.time()
        self._ping_sent_at: float | None = None
        self._done = False

    # -- start and reading -----------------------------------------------------------------

    def start(self, args: Any, kwargs: Any, early: bytes) -> None:
        """Run ``open``, then read: first ``early``, what the client sent after its
        handshake request without waiting for the answer, then the stream."""
        stream = self.stream
        stream.set_close_callback(self._on_stream_closed)
        # (The HTTP side pauses reading while a client sends faster than it is answered.)
        stream.resume_reading()
        stream.start_reading(self._on_data, self._on_eof)
        self._schedule_ping()
        self._run(self.handler.open, *args, **kwargs)
        if early:
            self._on_data(early)
        if stream.read_closed:
            self._on_eof()  # it stopped sending while the handshake was being answered

    def _on_data(self, data: bytes) -> None:
        if self.reader is None:
            return  # failed: what follows is discarded
        self._last_seen = self.loop.time()
        self.reader.feed(data)
        self._process()

    def _on_eof(self) -> None:
        """The client stopped sending without a close frame: it has gone (1006), but what
        it sent before is still answered -- once a running async callback is done -- and
        what was written to it leaves before the connection closes."""
        self._input_ended = True
        if not self._busy:
            self._end_after_input()

    def _end_after_input(self) -> None:
        if not self.stream.closed:
            self.closing = True
            self._close_when_flushed()

    def _close_when_flushed(self) -> None:
        """Close once what was written has left, or after :data:`_CLOSE_TIMEOUT` (a client
        that reads nothing more would keep the flush waiting for ever)."""
        self.stream.close_after_flush()
        self._set_timer(self.loop.time() + _CLOSE_TIMEOUT)

    def _process(self) -> None:
        # self.reader is read again each turn: a callback that failed drops it
        while not self._busy and not self.stream.closed and self.reader is not None:
            reader = self.reader
            try:
                event = reader.next_event()
            except WebSocketError as exc:
                log.info("WebSocket from %s failed: %s", self.handler.request.remote_ip, exc)
                self._fail(exc.code, exc.reason)
                return
            if event is None:
                return
            kind, value = event
            if kind == TEXT or kind == BINARY:
                if not self.closing:
                    self._run(self.handler.on_message, value)
            elif kind == PING:
                if self._over_limit():
                    self._overflow()  # pings sent by a client that reads no pongs
                    return
                if not self.closing:
                    self.send_control(PONG, value)
                    self._run(self.handler.on_ping, value)
            elif kind == PONG:
                self._ping_sent_at = None
                self._run(self.handler.on_pong, value)
            elif kind == CLOSE:
                self._on_close_frame(*value)
                return

    def _run(self, callback: Any, *args: Any, **kwargs: Any) -> None:
        """Run a handler callback; an awaitable result holds further reading until done."""
        try:
            result = callback(*args, **kwargs)
        except Exception:
            log.exception("error in %s.%s", type(self.handler).__name__, callback.__name__)
            self._fail(1011, "internal error")
            return
        if result is not None and inspect.isawaitable(result):
            self._busy = True
            self.stream.pause_reading()
            task = Task(self.loop, self._await(result, callback.__name__))
            task.add_done_callback(self._resume)

    async def _await(self, pending: Any, name: str) -> None:
        try:
            await pending
        except WebSocketClosedError:
            pass
        except Exception:
            log.exception("error in %s.%s", type(self.handler).__name__, name)
            self._fail(1011, "internal error")

    def _resume(self, task: Future) -> None:
        self._busy = False
        if not self.stream.closed:
            self.stream.resume_reading()
            self._process()
            if self._input_ended and not self._busy:
                self._end_after_input()

    # -- writing -----------------------------------------------------------------------------

    def send_message(self, opcode: int, payload: bytes) -> Future:
        future = self.loop.create_future()
        stream = self.stream
        if self._over_limit():
            self._overflow()
            future.set_exception(WebSocketClosedError("the client is too slow"))
            return future
        rsv1 = False
        if self.deflate is not None:
            payload = self.deflate.compress(payload)
            rsv1 = True
        if len(payload) > _JOIN_LIMIT:
            stream.write(frame_header(opcode, len(payload), rsv1))
            stream.write(payload)
        else:
            stream.write(encode_frame(opcode, payload, rsv1))
        self._count_frame()
        self._waiters.append(future)
        return future

    def _over_limit(self) -> bool:
        return self.stream.buffered_bytes + self._queued * _FRAME_COST > self.max_write_buffer

    def _count_frame(self) -> None:
        if not self._queued:
            self.stream.on_flushed(self._flushed)  # one callback for all the frames until then
        self._queued += 1

    def _overflow(self) -> None:
        """More than ``max_write_buffer`` bytes wait for a client that does not read:
        drop it (what is unsent too, the kernel's copy included)."""
        log.info("WebSocket to %s closed: %d bytes unsent (more than "
                 "websocket_max_write_buffer)", self.handler.request.remote_ip,
                 self.stream.buffered_bytes)
        self.closing = True
        self.reader = None  # type: ignore[assignment]
        self.stream.reset()

    def _flushed(self) -> None:
        # Everything queued has reached the kernel: every waiting write is done.
        self._queued = 0
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def send_control(self, opcode: int, payload: bytes) -> None:
        self.stream.write(encode_frame(opcode, payload))
        self._count_frame()

    # -- closing -----------------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        if self.closing or self.stream.closed:
            return
        self.closing = True
        self.send_control(CLOSE, close_payload(code, reason))
        self._set_timer(self.loop.time() + _CLOSE_TIMEOUT)  # for the client's answer

    def _on_close_frame(self, code: int, reason: str) -> None:
        if code != 1005:
            self.handler.close_code, self.handler.close_reason = code, reason
        if not self.closing:
            self.closing = True
            # echo the client's code (none if it sent none)
            self.send_control(CLOSE, close_payload(None if code == 1005 else code))
        # The client sends nothing after its close frame: closing sends no reset.
        self._close_when_flushed()

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: a close frame, then the TCP close, as :meth:`_linger`."""
        self.reader = None  # type: ignore[assignment]
        if self.stream.closed:
            return
        if not self.closing:
            self.closing = True
            self.send_control(CLOSE, close_payload(code, reason))
        self._linger()

    def _linger(self) -> None:
        """Flush, shut the sending side, and discard what the client still sends until
        it closes (or for a moment): closing with unread input would send a reset, which
        can destroy the close frame before the client reads it."""
        self.stream.shut_after_flush()
        self._set_timer(self.loop.time() + _CLOSE_TIMEOUT)

    def _on_stream_closed(self) -> None:
        if self._done:
            return
        self._done = True
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_exception(WebSocketClosedError("the WebSocket closed"))
        handler = self.handler
        handler._ws = None  # no cycle between the two once closed
        handler._closed()
        self.reader = None  # type: ignore[assignment]

    # -- timers: pings, and the close handshake's deadline ------------------------------------

    def _set_timer(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _schedule_ping(self) -> None:
        interval = self.handler.ping_interval
        if interval:
            self._set_timer(self.loop.time() + interval)

    def _on_timer(self) -> None:
        self._timer = None
        if self.stream.closed:
            return
        if self.closing:
            self.stream.close()  # the close handshake (or lingering) took too long
            return
        now = self.loop.time()
        handler = self.handler
        sent = self._ping_sent_at
        if sent is not None and self._last_seen < sent and now - sent >= handler.ping_timeout:
            log.info("WebSocket to %s closed: no answer to a ping for %gs",
                     handler.request.remote_ip, now - sent)
            self.stream.close()
            return
        if sent is None or self._last_seen >= sent:
            self._ping_sent_at = now
            self.send_control(PING, b"")
        interval = handler.ping_interval or 0.0
        deadline = now + interval
        if self._ping_sent_at is not None:
            deadline = min(deadline, self._ping_sent_at + handler.ping_timeout)
        self._set_timer(max(deadline, now + 0.01))

