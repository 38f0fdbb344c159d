"""Drives HTTP/1.1 connections over IOStreams and hands complete requests to a delegate.

Per connection, :class:`HTTPConnection` feeds received bytes to the sans-I/O parser,
has each request body collected (by a :class:`~wsgiloop.body.BodyReceiver`: in memory
up to ``spool_threshold``, then in a temporary file; the size limit is enforced by the
parser while reading), and only then calls the delegate.  Pipelined requests wait in
the parser's buffer until the response before them has finished, so responses leave in
order.

The delegate seam -- :class:`~wsgiloop.delegate.Request`,
:class:`~wsgiloop.delegate.Responder` (which :class:`HTTPConnection` is) and
:class:`~wsgiloop.delegate.RequestDelegate` -- is described in :mod:`wsgiloop.delegate`.

Protocol errors are answered here, at one place (:meth:`HTTPConnection._reject`), and
the connection is closed.  Timeouts: the whole head must arrive within
``header_timeout``; an idle keep-alive connection is closed after
``keepalive_timeout``; a body that makes no progress for ``body_timeout``, or whose
average rate is below ``body_min_rate`` once ``body_timeout`` has passed, gets 408; a
response of which the client takes nothing for ``send_timeout`` is dropped and the
connection closed (``on_abort`` callbacks run, so the producer stops).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .body import BodyReceiver, close_body
from .delegate import Request, RequestDelegate
from .http import END_OF_MESSAGE, NEED_DATA, ProtocolError, RequestHead, RequestParser
from .http.proxies import parse_proxy_header
from .http.response import CHUNKED, LENGTH, NO_BODY, ResponseFramer, error_response, frame_head
from .ioloop import IOLoop, Timer
from .iostream import IOStream
from .params import ConnectionParameters

log = logging.getLogger("wsgiloop.error")

_IDLE, _HEAD, _BODY, _RESPONDING, _CLOSING, _DEFERRED = range(6)
_DETACHED = 6  # the socket belongs to another protocol (detach())
# A body or streamed piece larger than this is queued as it is rather than copied onto
# its head or its chunk framing: the stream gathers the buffers into one sendmsg, and
# the copy would cost more.
_JOIN_LIMIT = 1 << 12
# Pipelined requests answered in one go: the rest wait until the loop has handled the
# other connections' events of its pass, so one client's burst holds up nobody else.
_PIPELINE_BURST = 16


class HTTPConnection:
    """One client connection.  Every method runs on the loop thread."""

    # Slots: a server holds thousands of idle connections, and an instance dict of this
    # many attributes is not shared between instances (~1.6 KiB each).  ``__dict__``
    # stays available for attributes added later, made only when one is set (as
    # ``_going_away`` is, on a detached connection).
    __slots__ = ("stream", "loop", "params", "delegate", "peer", "sockname", "scheme",
                 "on_response", "_on_close", "_clock", "keep_alive_allowed",
                 "delegate_data", "parser", "_proxy_header", "_state", "_processing",
                 "_request", "_head", "_body", "_framer", "head_sent", "_abort_callbacks",
                 "_eof_callbacks", "_keep_alive", "_draining", "_state_since", "_timer",
                 "_flat", "_idle_timeout", "__dict__", "__weakref__")

    _going_away: Callable[[], Any] | None = None  # set by detach()

    def __init__(self, stream: IOStream, loop: IOLoop, params: ConnectionParameters,
                 delegate: RequestDelegate, peer: Any, sockname: Any, scheme: str = "http",
                 on_response: Callable[[Request, int, int], None] | None = None,
                 on_close: Callable[[HTTPConnection], None] | None = None) -> None:
        self.stream = stream
        self.loop = loop
        self.params = params
        self.delegate = delegate
        self.peer = peer
        self.sockname = sockname
        self.scheme = scheme
        #: Called once per response sent, as ``on_response(request, status, body_bytes)``
        #: (the access log and the post_request hook); None for nothing.
        self.on_response = on_response
        self._on_close = on_close
        self._clock = loop.clock
        #: False once the server is stopping: responses then say ``Connection: close``.
        self.keep_alive_allowed = True
        #: A dict the delegate may use for per-connection state (e.g. a cached environ).
        self.delegate_data: dict[str, Any] = {}
        self.parser = params.parser_class(params.limits)
        # The flat path (see _on_data) needs the Python parser's clean reading.
        self._flat = params.flat_path and type(self.parser) is RequestParser
        self._proxy_header: bytes | None = None
        if params.proxy_protocol:
            peers = params.proxy_protocol_peers
            if peers is None:
                peers = params.trusted_proxies
            if peers is not None and peers.trusts(peer):
                self._proxy_header = b""  # collecting the PROXY header
        self._state = _IDLE
        self._processing = False
        self._request: Request | None = None
        self._head: RequestHead | None = None
        self._body: BodyReceiver | None = None  # made with the first request body
        self._framer: ResponseFramer | None = None
        #: True once the response head has been handed to the stream.
        self.head_sent = False
        self._abort_callbacks: list[Callable[[], Any]] = []
        self._eof_callbacks: list[Callable[[], Any]] = []
        self._keep_alive = True
        self._draining = False
        #: The timer's delay once a response is queued: the idle time, or the send
        #: deadline's first check if that comes sooner.
        self._idle_timeout = min(params.keepalive_timeout, params.send_timeout)
        now = self._state_since = self._clock()
        self._timer: Timer | None = loop.call_at(now + params.header_timeout, self._on_timer)
        stream.set_close_callback(self._on_stream_closed)
        stream.start_reading(self._on_data, self._on_eof)

    # -- reading ---------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        if self._state == _IDLE and self._flat and self._proxy_header is None \
                and self.stream.buffered_bytes <= self.params.high_water:
            # The flat path: a clean request without a body that came whole in one read
            # goes from here to the delegate, past _process and the parser's events;
            # anything else (take_clean says None) takes the general code below.
            head = self.parser.take_clean(data)
            if head is not None:
                self._head = head
                self._keep_alive = True
                self._dispatch()
                return
        if self._draining:
            return
        if self._proxy_header is not None:
            data = self._take_proxy_header(data)
            if not data:
                return
        if self._state == _IDLE and self.stream.buffered_bytes <= self.params.high_water:
            # (Over the high-water mark, the client is not reading its answers: the
            # request stays IDLE in the parser, and _process waits for the drain.)
            self._state = _HEAD
            now = self._state_since = self._clock()
            deadline = now + self.params.header_timeout
            timer = self._timer
            if timer is None or timer.deadline > deadline:
                self._arm(deadline)
        elif self._state == _BODY:
            self._body.progress = self._clock()  # type: ignore[union-attr]
        self.parser.feed(data)
        if self._state == _DEFERRED:
            self._body.progress = self._clock()  # type: ignore[union-attr]
            self._pump_deferred()
            return
        if self._state == _RESPONDING:
            if self.parser.buffered > self.params.limits.max_head_size:
                self.stream.pause_reading()  # a client pipelining faster than we answer
            return
        self._process()

    def _process(self) -> None:
        """Turn buffered bytes into requests until a response is in progress."""
        if self._processing:
            return
        self._processing = True
        parser = self.parser
        stream = self.stream
        answered = 0
        try:
            while self._state != _RESPONDING and self._state != _CLOSING:
                if self._state == _IDLE and stream.buffered_bytes > self.params.high_water:
                    # The client is not reading its responses: answer no more pipelined
                    # requests (and read no more) until it catches up.
                    stream.pause_reading()
                    stream.set_drain_callback(self._on_drained)
                    break
                event = parser.next_event()
                if event is NEED_DATA:
                    if self._state == _IDLE and parser.buffered:
                        self._state = _HEAD
                        now = self._state_since = self._clock()
                        self._arm(now + self.params.header_timeout)
                    break
                if type(event) is RequestHead:
                    self._head = event
                    self._keep_alive = event.keep_alive
                    if event.chunked or event.content_length:
                        self._begin_body()
                    if event.expect_continue:
                        self._dispatch()
                        continue
                    if not parser.take_end():
                        continue
                    event = END_OF_MESSAGE  # no body: the request is complete now
                if event is END_OF_MESSAGE:
                    self._dispatch()
                    if self._state == _IDLE and not parser.buffered:
                        break  # answered at once, nothing pipelined behind it
                    answered += 1
                    if answered == _PIPELINE_BURST and self._state == _IDLE:
                        self.loop.call_soon(self._on_drained)  # the rest later
                        break
                else:
                    self._body.add(event)  # type: ignore[union-attr,arg-type]
        except ProtocolError as exc:
            self._reject(exc)
        finally:
            self._processing = False
        if self.stream.read_closed:
            self._input_ended()

    def _on_eof(self) -> None:
        """The client shut its sending side (or closed: TCP cannot tell which before
        something is sent): answer what it sent, then close (see :meth:`_input_ended`)."""
        if self._draining:
            self.stream.close_after_flush()  # nothing left to discard
            return
        if self._eof_callbacks:
            callbacks, self._eof_callbacks = self._eof_callbacks, []
            for callback in callbacks:
                self._run_callback(callback, "an end-of-input")
        if not self._processing and not self.stream.closed:
            self._input_ended()

    def _input_ended(self) -> None:
        """After the client's end of input: close once no request it sent waits for an
        answer.  A request being answered (or its deferred body) finishes first, and the
        complete requests pipelined behind it are answered too; an incomplete one can't
        be, and the connection closes without an answer, as it would have had the client
        closed."""
        state = self._state
        if state == _RESPONDING or state == _CLOSING or state == _DETACHED:
            return  # _complete comes back here; a closing connection closes anyway
        if state == _DEFERRED:
            # Waiting for the rest of a body that will not come: the waiting
            # application hears that the client has gone (_on_stream_closed).
            self.stream.close()
            return
        if state == _IDLE and self.parser.buffered:
            return  # waiting for the client to read its responses: _on_drained goes on
        self._state = _CLOSING
        self._close_gracefully()

    def _take_proxy_header(self, data: bytes) -> bytes:
        """Consume the PROXY header; returns the bytes after it (b"" while incomplete)."""
        buffered = self._proxy_header + data  # type: ignore[operator]
        try:
            parsed = parse_proxy_header(buffered)
        except ProtocolError as exc:
            self._proxy_header = None
            self._reject(exc)
            return b""
        if parsed is None:
            self._proxy_header = buffered
            if self._state == _IDLE:
                self._state = _HEAD  # the head deadline covers the PROXY header too
                self._state_since = self._clock()
            return b""
        length, source = parsed
        self._proxy_header = None
        if source is not None:
            self.peer = source
        if self._state == _HEAD and not self.parser.buffered:
            self._state = _IDLE
        return buffered[length:]

    def _on_drained(self) -> None:
        if self._state == _IDLE and not self.stream.closed:
            self.stream.resume_reading()
            self._process()

    def _begin_body(self) -> None:
        self._state = _BODY
        if self._body is None:
            self._body = BodyReceiver(self.params, self.peer)
        self._arm(self._body.begin(self._clock()))

    def _dispatch(self) -> None:
        head = self._head
        assert head is not None
        request = Request(head, self)
        if self.on_response is not None:
            request.start_time = time.time()
        if self._state == _BODY:
            if head.expect_continue:
                request.body_deferred = True
            else:
                self._body.take(request)  # type: ignore[union-attr]
        self._request = request
        self._state = _RESPONDING
        self._framer = None
        self.head_sent = False
        # The send deadline's first check.  The timer set when this request began (its
        # head, or the idle time before it) fires by then already unless it is later
        # than that start plus the send timeout: the clock is read only then.
        send_timeout = self.params.send_timeout
        timer = self._timer
        if timer is None or timer.deadline > self._state_since + send_timeout:
            deadline = self._clock() + send_timeout
            if timer is None or timer.deadline > deadline:
                self._arm(deadline)
        try:
            self.delegate(request, self)
        except Exception:
            log.exception("unhandled error in the request delegate")
            if self._state == _RESPONDING:
                self.abort()

    def receive_deferred_body(self, request: Request,
                              finished: Callable[[BaseException | None], Any]) -> None:
        """Send ``100 Continue`` (after anything already queued) and receive the body of a
        deferred request; then call ``finished(None)``, or ``finished(error)``."""
        if not request.body_deferred:
            finished(None)
            return
        if self.stream.closed or self._state != _RESPONDING:
            finished(ConnectionError("the client has gone"))
            return
        request.body_deferred = False
        if not self.head_sent and not self.stream.read_closed:
            # (After the client's end of input, what it sent is all there is: no 100.)
            self.stream.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._state = _DEFERRED
        self._arm(self._body.defer(request, finished, self._clock()))  # type: ignore[union-attr]
        # Body bytes sent without waiting for the 100 may have filled the parser's
        # buffer while the request waited, pausing reading: the body is wanted now.
        self.stream.resume_reading()
        self._pump_deferred()

    def _pump_deferred(self) -> None:
        try:
            whole = self._body.pump(self.parser)  # type: ignore[union-attr]
        except ProtocolError as exc:
            self._end_deferred(exc)
            return
        if whole:
            self._end_deferred(None)
        elif self.stream.read_closed:
            self._input_ended()  # the rest of the body will not come

    def _end_deferred(self, error: BaseException | None) -> None:
        ended = self._body.end(error)  # type: ignore[union-attr]
        if ended is None:
            return
        finished, error = ended
        if self._state == _DEFERRED:
            self._state = _RESPONDING
        if error is not None:
            self._keep_alive = False
        finished(error)

    # -- responding (the responder interface) ------------------------------------------------

    @property
    def client_gone(self) -> bool:
        return self.stream.closed

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        """Fix the status and headers; raises ValueError for invalid ones.  Sends nothing."""
        self._frame(status, headers, None)

    def _frame(self, status: str, headers: list[tuple[str, str]],
               body_length: int | None) -> ResponseFramer:
        """The framer of this response (kept as ``_framer``), with what the per-response
        callback will need; ``body_length`` when the whole body is at hand."""
        head = self._head
        assert head is not None
        request = self._request
        keep_alive = self._keep_alive and self.keep_alive_allowed and not (
            request is not None and request.body_deferred)
        framer = ResponseFramer(head.method, head.version, keep_alive, status, headers,
                                self.params.server_header, body_length)
        self._framer = framer
        if request is not None and self.on_response is not None:
            request.response_status = status
            request.response_headers = _as_sent(headers, framer.content_length)
        return framer

    def write(self, data: bytes) -> bool:
        """Send body ``data`` (the head goes first); False when over the high-water mark
        or the client has gone (see :class:`~wsgiloop.delegate.Responder`).

        A piece over 4 KiB is queued as it is, never copied: behind the head, or between
        its chunk-size line and CRLF (the stream gathers them into one ``sendmsg``)."""
        framer = self._framer
        assert framer is not None, "start() before write()"
        stream = self.stream
        if not self.head_sent:
            self.head_sent = True
            if len(data) <= _JOIN_LIMIT:  # the head and a small piece in one buffer
                stream.write(framer.head + framer.encode(data))
                return stream.buffered_bytes <= self.params.high_water and not stream.closed
            stream.write(framer.head)
        if framer.mode == CHUNKED and len(data) > _JOIN_LIMIT:
            stream.writelines(framer.chunk(data))
        else:
            stream.write(framer.encode(data))
        return stream.buffered_bytes <= self.params.high_water and not stream.closed

    def write_file(self, fd: int, offset: int, count: int) -> bool:
        """Send ``count`` bytes of file ``fd`` from ``offset`` (sendfile where possible);
        False, sending nothing, when the framing cannot carry raw bytes (chunked)."""
        framer = self._framer
        assert framer is not None, "start() before write_file()"
        if framer.mode == CHUNKED:
            return False
        if not self.head_sent:
            self.write(b"")
        count = framer.allowance(count)
        if count:
            framer.sent += count
            self.stream.write_file(fd, offset, count)
        return True

    def when_writable(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once the write buffer has drained to the low-water mark."""
        self.stream.set_drain_callback(callback)

    def when_flushed(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once everything written so far has reached the socket."""
        self.stream.on_flushed(callback)

    def on_abort(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` if the connection is lost before the response finishes."""
        self._abort_callbacks.append(callback)

    def on_client_eof(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` if the client's end of input comes before the response
        finishes (soon, if it already came): it shut its sending side, or closed -- TCP
        cannot tell which until something is sent.  The response can still be sent."""
        if self.stream.read_closed:
            self.loop.call_soon(self._late_eof_callback, self._request, callback)
        else:
            self._eof_callbacks.append(callback)

    def _late_eof_callback(self, request: Request | None,
                           callback: Callable[[], Any]) -> None:
        if request is not None and self._request is request and not self.stream.closed:
            self._run_callback(callback, "an end-of-input")

    @staticmethod
    def _run_callback(callback: Callable[[], Any], kind: str) -> None:
        try:
            callback()
        except Exception:
            log.exception("error in %s callback", kind)

    def respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        """``start``, ``write`` and ``finish`` in one call, for a body held whole.

        The head and body leave in one write (a body over 4 KiB is queued after the
        head, not copied); a missing Content-Length is added.  The usual answer -- a body
        of exactly its Content-Length, or none -- needs no :class:`ResponseFramer`.
        """
        if self._state != _RESPONDING:
            return  # the client has gone
        head = self._head
        assert head is not None
        request = self._request
        length = len(body)
        code, mode, content_length, keep_alive, head_bytes = frame_head(
            head.method, head.version, self._keep_alive and self.keep_alive_allowed
            and not (request is not None and request.body_deferred),
            status, headers, self.params.server_header, length)
        if mode == LENGTH and content_length == length:
            if length > _JOIN_LIMIT:
                self.stream.write(head_bytes)
                payload = body
            else:
                payload = head_bytes + body
        elif mode == NO_BODY:
            payload = head_bytes
            length = 0
        else:  # chunked, close-delimited, or a body not of its declared length
            framer = self._frame(status, headers, length)
            payload = framer.head + framer.encode(body) + framer.end()
            self.head_sent = True
            self.stream.write(payload)
            self._complete(framer)
            return
        self.head_sent = True
        self.stream.write(payload)
        if request is not None and self.on_response is not None:
            request.response_status = status
            request.response_headers = _as_sent(headers, content_length)
        self._next_request(code, length, self._keep_alive and keep_alive)

    def finish(self) -> None:
        """Complete the response; the connection moves on to the next request or closes."""
        if self._state != _RESPONDING:
            return
        framer = self._framer
        assert framer is not None, "start() before finish()"
        tail = framer.end()
        if not self.head_sent:
            self.head_sent = True
            tail = framer.head + tail
        if tail:
            self.stream.write(tail)
        self._complete(framer)

    def _complete(self, framer: ResponseFramer) -> None:
        keep_alive = self._keep_alive and framer.keep_alive
        if framer.mode == LENGTH and (framer.truncated or framer.sent < framer.content_length):
            if framer.truncated:
                log.warning("response longer than its Content-Length %d; the rest was cut",
                            framer.content_length)
            else:
                log.warning("response shorter than its Content-Length (%d of %d bytes); "
                            "closing the connection", framer.sent, framer.content_length)
                keep_alive = False
        self._next_request(framer.status, framer.sent, keep_alive)

    def _next_request(self, status: int, sent: int, keep_alive: bool) -> None:
        """After a response of ``sent`` body bytes: move on to the next request, or
        close when the connection is not to be ``keep_alive``."""
        request = self._request
        if request is not None:
            if request.body is not None:
                close_body(request)
            if request.body_deferred:
                keep_alive = False  # the client may still send a body we never asked for
            if self.on_response is not None:
                self.on_response(request, status, sent)  # body bytes, unframed
        self._request = None
        if self._abort_callbacks:
            self._abort_callbacks = []
        if self._eof_callbacks:
            self._eof_callbacks = []
        if not keep_alive:
            self._state = _CLOSING
            head = self._head
            if head is not None and not head.keep_alive and not self.parser.buffered \
                    and (request is None or not request.body_deferred):
                # The client said this was its last request: nothing more will come, so
                # there is nothing to drain before closing.
                self.stream.close_after_flush()
            else:
                self._close_gracefully()
            return
        self._state = _IDLE
        now = self._state_since = self._clock()
        # The send deadline is armed too: the response usually is still queued (a timer
        # that fires early only looks again).
        deadline = now + self._idle_timeout
        timer = self._timer
        if timer is None or timer.deadline > deadline:
            self._arm(deadline)
        buffered = self.parser.start_next_request()
        stream = self.stream
        if stream.reading_paused:
            stream.resume_reading()
        if self._processing:
            return  # _process, which this response was given from, goes on
        if buffered:
            self._process()
        elif stream.read_closed:
            self._input_ended()

    def abort(self) -> None:
        """Give up on the response and close the connection (the client sees it cut)."""
        if self._request is not None:
            close_body(self._request)
            self._request = None
        self._abort_callbacks = []
        self._eof_callbacks = []
        self._state = _CLOSING
        self.stream.flush()  # what was already written goes out; then the cut
        self.stream.close()

    # -- errors, timeouts and closing ------------------------------------------------------------

    def _reject(self, exc: ProtocolError) -> None:
        """Answer a protocol error and close: the request framing can't be trusted."""
        log.debug("rejecting request from %s: %s", self.peer, exc)
        if self._state == _RESPONDING and self.head_sent:
            self.abort()
            return
        status, headers, body = error_response(exc.status, close=True)
        framer = ResponseFramer("GET", "HTTP/1.1", False, status, headers,
                                self.params.server_header)
        self.stream.write(framer.head + body)
        if self.on_response is not None and self._head is not None and exc.status != 408:
            request = Request(self._head, self)
            request.start_time = time.time()
            self.on_response(request, exc.status, len(body))
        self._state = _CLOSING
        self._close_gracefully()

    def _close_gracefully(self) -> None:
        """Flush, half-close, and discard what the client still sends for a moment.

        Closing with unread input would make the kernel send a reset, which can destroy
        the reply before the client reads it.
        """
        self._draining = True
        stream = self.stream
        if stream.read_closed:
            # All the client sent was read (to its end), so a plain close sends no
            # reset: close once the reply is out.
            stream.close_after_flush()
            deadline = self._send_deadline()
            if deadline is not None:  # a reader that takes nothing is not waited for
                self._arm(deadline)
            return

        def linger() -> None:
            stream.resume_reading()
            self._cancel_timer()
            self._timer = self.loop.call_later(self.params.linger, stream.close)

        stream.shut_after_flush(linger)
        deadline = self._send_deadline()
        if deadline is not None:  # a reader that takes nothing is not waited for
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        """Make the timer fire by ``deadline``; a later-firing timer is moved earlier.

        A timer that fires early is harmless: :meth:`_on_timer` works out the real
        deadline from the state and sleeps again.
        """
        timer = self._timer
        if timer is None or timer.deadline > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deadline(self) -> float | None:
        state = self._state
        params = self.params
        if state == _IDLE:
            if self._head is None:  # no request yet on this connection
                return self._state_since + params.header_timeout
            return self._state_since + params.keepalive_timeout
        if state == _HEAD:
            return self._state_since + params.header_timeout
        if state == _BODY or state == _DEFERRED:
            return self._body.deadline()  # type: ignore[union-attr]
        return None

    def _send_deadline(self) -> float | None:
        """When the response on its way times out for want of progress (None: nothing
        is waiting to be sent)."""
        stream = self.stream
        if not stream.writing:
            return None
        if stream.write_blocked:
            return stream.write_progress + self.params.send_timeout
        return self._clock() + self.params.send_timeout  # not tried yet

    def _on_timer(self) -> None:
        self._timer = None
        if self.stream.closed:
            return
        now = self._clock()
        send_deadline = self._send_deadline()
        if send_deadline is not None and send_deadline <= now:
            self._send_timed_out()
            return
        if self._draining:
            if send_deadline is not None:  # the last reply is still on its way
                self._timer = self.loop.call_at(send_deadline, self._on_timer)
            return
        deadline = self._deadline()
        if deadline is None:
            # Responding: look again later; a response has no read deadline.
            deadline = now + min(self.params.keepalive_timeout, self.params.send_timeout)
        elif deadline <= now and self._state == _IDLE and send_deadline is not None:
            # The last response is still on its way: idleness starts when it is sent.
            self._state_since = now
            deadline = now + self.params.keepalive_timeout
        if deadline > now:
            if send_deadline is not None and send_deadline < deadline:
                deadline = send_deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)
            return
        if self._state == _IDLE:
            self.stream.close()
            return
        if self._state == _HEAD:
            what = "request head timed out"
        else:
            what = self._body.late(now)  # type: ignore[union-attr]
        log.info("%s from %s", what, self.peer)
        if self._state == _DEFERRED:
            self._end_deferred(ProtocolError(408, what))
        else:
            self._reject(ProtocolError(408, what))

    def _send_timed_out(self) -> None:
        """The client took nothing for ``send_timeout``: drop the response and close (the
        abort callbacks close the application's iterable)."""
        log.info("sending to %s timed out: nothing taken for %gs, %d bytes unsent; closing",
                 self.peer, self.params.send_timeout, self.stream.buffered_bytes)
        self.stream.reset()  # the kernel's copy of the unsent part goes too

    def _on_stream_closed(self) -> None:
        self._cancel_timer()
        body = self._body
        if body is not None and body.deferred:
            self._end_deferred(ConnectionError("the client has gone"))
        self._eof_callbacks = []
        if self._state == _RESPONDING:
            callbacks, self._abort_callbacks = self._abort_callbacks, []
            for callback in callbacks:
                self._run_callback(callback, "an abort")
            if self._request is not None:
                close_body(self._request)
                self._request = None
        self._state = _CLOSING
        if body is not None:
            body.discard()
        if self._on_close is not None:
            self._on_close(self)

    def detach(self, going_away: Callable[[], Any]) -> tuple[IOStream, bytes]:
        """Hand the socket to another protocol (a WebSocket, before its ``101``): returns
        its stream, which the caller reads and writes from now on, and the bytes received
        after the request (a client need not wait for the ``101`` to send its first
        frames), which are the caller's first input and never read as HTTP.

        Only while answering a request, before any of the response was sent.  The
        connection then has no timer and no callback but the stream's close one: it
        still counts as open (``--worker-connections``) until the stream closes.  A
        graceful stop calls ``going_away()`` once (:meth:`going_away`) instead of
        waiting for it to be idle.
        """
        assert self._state == _RESPONDING and not self.head_sent
        self._cancel_timer()
        self._state = _DETACHED
        rest = self.parser.take_rest()
        if self._request is not None:
            close_body(self._request)
            self._request = None
        self._abort_callbacks = []
        self._eof_callbacks = []
        self._going_away = going_away
        return self.stream, rest

    def going_away(self) -> None:
        """The server is stopping: ask a detached connection to end (once)."""
        callback, self._going_away = self._going_away, None
        if callback is not None:
            self._run_callback(callback, "a going-away")

    def close(self) -> None:
        """Close now (server shutdown)."""
        self.stream.close()

    @property
    def idle(self) -> bool:
        """True when no request is in progress (safe to close during a graceful stop)."""
        return self._state == _IDLE and not self.parser.buffered and not self.stream.writing

    def idle_for(self) -> float:
        """Seconds this connection has been idle (0 when it is not)."""
        return self._clock() - self._state_since if self.idle else 0.0


def _as_sent(headers: list[tuple[str, str]], content_length: int | None
             ) -> list[tuple[str, str]]:
    """The header fields as the per-response callback (the access log) should see them:
    with the Content-Length the server added to a whole body the application gave none
    for."""
    if content_length is None or any(name.lower() == "content-length" for name, _ in headers):
        return headers
    return [*headers, ("Content-Length", str(content_length))]
