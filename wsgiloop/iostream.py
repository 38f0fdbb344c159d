"""Non-blocking buffered socket I/O on an :class:`~wsgiloop.ioloop.IOLoop`.

An :class:`IOStream` owns one connected socket.  Reading comes in two styles that are
never used at the same time on one stream:

* *push*: :meth:`IOStream.start_reading` hands every received chunk to a callback
  (the HTTP connection feeds it to its parser); :meth:`pause_reading` and
  :meth:`resume_reading` apply back-pressure towards the peer.  The peer's end of input
  (it shut its sending side, or closed) closes the stream, unless an ``on_eof``
  callback was given: then reading stops for good (``read_closed``), the stream stays
  open for writing, and ``on_eof`` is called after the last chunk was handed over;
* *pull*: :meth:`read_until` and :meth:`read_bytes` return Futures, served from a read
  buffer bounded by ``max_buffer_size``.

Writing appends to a queue (bytes as they are, not copied) that the loop flushes at
the end of its pass: the buffers gathered into one ``sendmsg`` (joined only by a TLS
stream, which has none), files with ``os.sendfile``; a response queued in one pass
usually costs one system call.
``buffered_bytes`` above ``high_water`` means the producer should wait for
the drain callback, called once the queue falls to ``low_water``.  While the socket
refuses part of the queue, ``write_blocked`` is true and ``write_progress`` is the loop
time at which it last took any bytes (for a send timeout).

All methods run on the loop thread.  A reset or broken pipe closes the stream quietly.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

from .ioloop import ERROR, READ, WRITE, Future, IOLoop

_QUIET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED,
                           errno.ETIMEDOUT, errno.ESHUTDOWN, errno.ENOTCONN, errno.EBADF})
_IOV_MAX = 512


class StreamClosedError(IOError):
    """The stream was closed before the operation could complete."""


class BufferFullError(IOError):
    """More data arrived than ``max_buffer_size`` allows for a pull read."""


class _FileChunk:
    __slots__ = ("fd", "offset", "remaining")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd = fd
        self.offset = offset
        self.remaining = count


class IOStream:
    """One connected, non-blocking socket with read and write buffers."""

    # Slots: a server holds thousands of idle streams (an instance dict of this many
    # attributes is not shared between instances, ~0.8 KiB each).
    __slots__ = ("socket", "fileno", "loop", "max_buffer_size", "read_chunk_size",
                 "high_water", "low_water", "use_sendfile", "closed", "error",
                 "buffered_bytes", "write_blocked", "write_progress", "_sent", "_write_queue",
                 "_queued_files",
                 "_read_buffer", "_on_data", "_on_eof", "read_closed", "_deliver_pending",
                 "reading_paused", "_pull_future", "_pull_delimiter", "_pull_count",
                 "_pull_max", "_drain_callback", "_flushed_callbacks", "_close_callbacks",
                 "_interest", "__weakref__")

    _WOULD_BLOCK: tuple[type[BaseException], ...] = (BlockingIOError, InterruptedError)
    _gather = True  # the socket has sendmsg (scatter/gather)
    _max_send = 0  # most bytes handed to one send (0: no limit)

    def __init__(self, sock: socket.socket, loop: IOLoop, *,
                 max_buffer_size: int = 1 << 20, read_chunk_size: int = 65536,
                 high_water: int = 1 << 20, low_water: int = 1 << 16,
                 use_sendfile: bool = True) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.socket = sock
        self.fileno = sock.fileno()
        self.loop = loop
        self.max_buffer_size = max_buffer_size
        self.read_chunk_size = read_chunk_size
        self.high_water = high_water
        self.low_water = low_water
        self.use_sendfile = use_sendfile
        self.closed = False
        self.error: BaseException | None = None
        self.buffered_bytes = 0
        #: True while the socket has refused part of the write queue.
        self.write_blocked = False
        #: Loop time of the last send that took bytes while ``write_blocked`` (or of the
        #: send that found the socket full).
        self.write_progress = 0.0
        self._sent = 0  # bytes sent, ever
        # A list, not a deque: an empty list holds no block of its own.
        self._write_queue: list[Any] = []
        self._queued_files = 0  # the _FileChunks in the write queue
        self._read_buffer = bytearray()
        self._on_data: Callable[[bytes], Any] | None = None
        self._on_eof: Callable[[], Any] | None = None
        #: True once the peer's end of input was read (with an ``on_eof`` callback).
        self.read_closed = False
        self._deliver_pending = False
        #: True while reading is paused (back-pressure).
        self.reading_paused = False
        self._pull_future: Future | None = None
        self._pull_delimiter: bytes | None = None
        self._pull_count = 0
        self._pull_max = 0
        self._drain_callback: Callable[[], Any] | None = None
        self._flushed_callbacks: list[Callable[[], Any]] = []
        self._close_callbacks: list[Callable[[], Any]] = []
        self._interest = READ
        loop.add_handler(self.fileno, self._handle_events, READ)

    # -- interest --------------------------------------------------------------------------

    def _set_interest(self, interest: int) -> None:
        if interest != self._interest and not self.closed:
            self._interest = interest
            self.loop.update_handler(self.fileno, interest)

    def _wanted_interest(self) -> int:
        interest = 0
        if not self.reading_paused and not self.read_closed:
            interest |= READ
        if self._write_queue:
            interest |= WRITE
        return interest

    def _handle_events(self, fd: int, events: int) -> None:
        if events & READ:
            # The receive is written out here, not in a method of its own: it is the
            # hot path of every request.
            try:
                data = self.socket.recv(self.read_chunk_size)
            except self._WOULD_BLOCK:
                pass
            except OSError as exc:
                self._fail(exc)
                return
            else:
                on_data = self._on_data
                if data and on_data is not None and not self._deliver_pending:
                    on_data(data)
                else:
                    self._received(data)
            if events == READ:
                return
        self._handle_other_events(events)

    def _handle_other_events(self, events: int) -> None:
        """The write and error half of an epoll event (after any read)."""
        if self.closed:
            return
        if events & WRITE:
            self.flush()
        if self.closed:
            return
        if events & ERROR and not events & READ:
            self.close()

    # -- push reading ----------------------------------------------------------------------

    def start_reading(self, on_data: Callable[[bytes], Any],
                      on_eof: Callable[[], Any] | None = None) -> None:
        """Hand every chunk received from now on to ``on_data`` (push style); with
        ``on_eof``, the peer's end of input is reported to it instead of closing."""
        self._on_data = on_data
        self._on_eof = on_eof
        if self._read_buffer:
            # Hand over what a pull read left behind on the next pass; bytes arriving
            # before then are appended, so the order is kept.
            self._deliver_pending = True
            self.loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._deliver_pending = False
        data = bytes(self._read_buffer)
        self._read_buffer.clear()
        if data and not self.closed and self._on_data is not None:
            self._on_data(data)

    def pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self._set_interest(self._wanted_interest())

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self._set_interest(self._wanted_interest())

    def _received(self, data: bytes) -> None:
        """Bytes just received that no push reader takes now, or b"" for the end of input."""
        if not data:
            if self._on_eof is None or self._pull_future is not None:
                self.close()
            else:
                self._end_of_input()
            return
        if self._on_data is not None and not self._deliver_pending:
            self._on_data(data)
            return
        self._read_buffer += data
        if self._pull_future is not None:
            self._try_pull()
        elif len(self._read_buffer) > self.max_buffer_size and not self._deliver_pending:
            self._fail(BufferFullError("read buffer over its limit"))

    def _end_of_input(self) -> None:
        """The peer sends no more: stop reading (epoll would report the end over and
        over) and tell ``on_eof``, after a delivery still pending."""
        self.read_closed = True
        self._set_interest(self._wanted_interest())
        if self._deliver_pending:
            self.loop.call_soon(self._report_eof)
        else:
            self._report_eof()

    def _report_eof(self) -> None:
        on_eof = self._on_eof
        if on_eof is not None and not self.closed:
            on_eof()

    # -- pull reading ----------------------------------------------------------------------

    def read_until(self, delimiter: bytes, max_bytes: int | None = None) -> Future:
        """Future of the bytes up to and including ``delimiter``.

        Fails with :class:`BufferFullError` when ``max_bytes`` (or the buffer limit) is
        passed before the delimiter is seen.
        """
        return self._start_pull(delimiter, 0, max_bytes or self.max_buffer_size)

    def read_bytes(self, count: int) -> Future:
        """Future of exactly ``count`` bytes."""
        return self._start_pull(None, count, self.max_buffer_size)

    def _start_pull(self, delimiter: bytes | None, count: int, max_bytes: int) -> Future:
        if self._pull_future is not None:
            raise RuntimeError("a read is already pending on this stream")
        future = Future(self.loop)
        if self.closed:
            future.set_exception(StreamClosedError("stream is closed"))
            return future
        self._pull_future = future
        self._pull_delimiter = delimiter
        self._pull_count = count
        self._pull_max = max_bytes
        self._try_pull()
        return future

    def _try_pull(self) -> None:
        future = self._pull_future
        if future is None:
            return
        buf = self._read_buffer
        if self._pull_delimiter is not None:
            index = buf.find(self._pull_delimiter)
            if index >= 0:
                end = index + len(self._pull_delimiter)
                if end > self._pull_max:
                    self._pull_failed(BufferFullError("delimiter not found within the limit"))
                    return
                result = bytes(buf[:end])
                del buf[:end]
            elif len(buf) > self._pull_max:
                self._pull_failed(BufferFullError("delimiter not found within the limit"))
                return
            else:
                return
        else:
            if len(buf) < self._pull_count:
                return
            result = bytes(buf[:self._pull_count])
            del buf[:self._pull_count]
        self._pull_future = None
        future.set_result(result)

    def _pull_failed(self, exc: BaseException) -> None:
        future, self._pull_future = self._pull_future, None
        if future is not None and not future.done():
            future.set_exception(exc)
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; it is sent at the end of the current loop pass at the latest.

        Sending at the end of the pass, for all streams together, batches the responses a
        pass produces; their receivers are then woken in one burst instead of one wake-up
        per response, which matters on loopback and in virtual machines.
        """
        if self.closed or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse its buffer
        queue = self._write_queue
        if not queue:
            self.loop.flush_soon(self)
        queue.append(data)
        self.buffered_bytes += len(data)

    def writelines(self, buffers: Iterable[bytes]) -> None:
        """Queue each of ``buffers`` in turn, as :meth:`write` does: they are gathered
        into one ``sendmsg``, not joined.  (Written out rather than calling :meth:`write`
        per buffer: a streamed chunk is three buffers, one call here instead of three.)"""
        if self.closed:
            return
        queue = self._write_queue
        was_empty = not queue
        for data in buffers:
            if data:
                if type(data) is not bytes:
                    data = bytes(data)  # (a view's len() may count items, not bytes)
                queue.append(data)
                self.buffered_bytes += len(data)
        if was_empty and queue:
            self.loop.flush_soon(self)

    def write_file(self, fd: int, offset: int, count: int) -> None:
        """Queue ``count`` bytes of the open file ``fd`` from ``offset``.

        The caller keeps ``fd`` open until the flushed callback has run.  Sent with
        ``os.sendfile`` unless ``use_sendfile`` is off (TLS), then read and written.
        """
        if self.closed or count <= 0:
            return
        self._write_queue.append(_FileChunk(fd, offset, count))
        self._queued_files += 1
        if len(self._write_queue) == 1:
            self.loop.flush_soon(self)

    @property
    def writing(self) -> bool:
        return bool(self._write_queue)

    @property
    def over_high_water(self) -> bool:
        return self.buffered_bytes > self.high_water

    def set_drain_callback(self, callback: Callable[[], Any] | None) -> None:
        """Call ``callback`` once, when the queue falls to ``low_water`` (or now, if it is)."""
        if callback is not None and self.buffered_bytes <= self.low_water \
                and not self._queued_files:
            self.loop.call_soon(callback)
            return
        self._drain_callback = callback

    def on_flushed(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once everything queued so far has reached the socket."""
        if not self._write_queue:
            self.loop.call_soon(callback)
        else:
            self._flushed_callbacks.append(callback)

    def flush(self) -> None:
        """Send what the socket takes now (the loop calls this at the end of a pass, and
        the stream when the socket becomes writable)."""
        if self.closed:
            return
        queue = self._write_queue
        if not queue:
            if self._interest & WRITE:  # writable, with nothing left to write
                self._set_interest(self._wanted_interest())
            return
        sent_before = self._sent
        try:
            if len(queue) == 1 and type(queue[0]) is bytes and not self._max_send:
                # The usual case, one response's bytes: one send, no gathering.  A part
                # left over waits until the socket is writable again.
                data = queue[0]
                sent = self.socket.send(data)
                self.buffered_bytes -= sent
                self._sent += sent
                if sent == len(data):
                    queue.clear()
                else:
                    queue[0] = memoryview(data)[sent:]
            else:
                self._send_queued(queue, self.socket)
        except self._WOULD_BLOCK:
            pass
        except OSError as exc:
            self._fail(exc)
            return
        if not queue:
            self.write_blocked = False
            if self._interest != READ or self.reading_paused or self.read_closed:
                self._set_interest(self._wanted_interest())
            if self._drain_callback is not None:
                callback, self._drain_callback = self._drain_callback, None
                callback()
            if self._flushed_callbacks and not queue:  # (the drain callback may write)
                callbacks, self._flushed_callbacks = self._flushed_callbacks, []
                for callback in callbacks:
                    callback()
            return
        if not self.write_blocked or self._sent != sent_before:
            self.write_blocked = True
            self.write_progress = self.loop.clock()
        self._set_interest(self._wanted_interest())
        if self._drain_callback is not None and self.buffered_bytes <= self.low_water \
                and not isinstance(queue[0], _FileChunk):
            callback, self._drain_callback = self._drain_callback, None
            callback()

    def _send_queued(self, queue: list[Any], sock: socket.socket) -> None:
        """Send from the queue (gathering what it can) until it is empty or the socket
        is full (raises BlockingIOError then, or returns after a partial send)."""
        while queue:
            head = queue[0]
            if type(head) is _FileChunk:
                self._send_file_chunk(head)
                del queue[0]
                self._queued_files -= 1
                continue
            if self._queued_files or len(queue) > _IOV_MAX:
                buffers = self._leading_buffers(queue)
            else:
                buffers = queue  # only buffers, few enough for one call: all of them
            if not self._gather:
                sent = sock.send(self._joined(buffers))
            elif len(buffers) > 1:
                sent = sock.sendmsg(buffers)
            else:
                sent = sock.send(buffers[0])
            self.buffered_bytes -= sent
            self._sent += sent
            if buffers is queue and not self.buffered_bytes:
                queue.clear()  # the usual outcome: everything taken
                return
            done = 0  # buffers sent whole
            for item in buffers:
                if sent < len(item):
                    break
                sent -= len(item)
                done += 1
            partial = done < len(buffers)
            del queue[:done]
            if partial:
                if sent:
                    queue[0] = memoryview(queue[0])[sent:]
                break  # the socket buffer is full

    @staticmethod
    def _leading_buffers(queue: list[Any]) -> list[Any]:
        """The buffers at the front of the queue, up to the first file and at most
        ``_IOV_MAX`` of them."""
        buffers = []
        for item in queue:
            if type(item) is _FileChunk or len(buffers) >= _IOV_MAX:
                break
            buffers.append(item)
        return buffers

    def _joined(self, buffers: list) -> Any:
        """The first bytes of ``buffers`` as one buffer of at most ``_max_send`` bytes
        (or the first buffer whole, without a limit), copying no large buffer."""
        limit = self._max_send
        first = buffers[0]
        if len(buffers) == 1 or len(first) >= limit:
            return memoryview(first)[:limit] if limit and len(first) > limit else first
        parts, size = [], 0
        for item in buffers[:16]:
            if size + len(item) > limit:
                break
            parts.append(item)
            size += len(item)
        return b"".join(parts)

    def _send_file_chunk(self, chunk: _FileChunk) -> None:
        """Send the rest of a file chunk; raises BlockingIOError when the socket is full
        (the chunk then keeps its place and progress)."""
        while chunk.remaining > 0:
            if self.use_sendfile:
                sent = os.sendfile(self.fileno, chunk.fd, chunk.offset,
                                   min(chunk.remaining, 1 << 30))
            else:
                data = os.pread(chunk.fd, min(chunk.remaining, 1 << 16), chunk.offset)
                sent = self.socket.send(data) if data else 0
            if sent == 0:
                chunk.remaining = 0  # the file is shorter than promised
                break
            self._sent += sent
            chunk.offset += sent
            chunk.remaining -= sent

    # -- closing ---------------------------------------------------------------------------

    def set_close_callback(self, callback: Callable[[], Any]) -> None:
        self._close_callbacks.append(callback)

    def _fail(self, exc: BaseException) -> None:
        if not (isinstance(exc, OSError) and exc.errno in _QUIET_ERRNOS):
            self.error = exc
        self.close()

    def close(self) -> None:
        """Close the socket now, dropping anything unsent.  Close callbacks run soon."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_handler(self.fileno)
        try:
            self.socket.close()
        except OSError:
            pass
        self._write_queue.clear()
        self._queued_files = 0
        self.buffered_bytes = 0
        self.write_blocked = False
        future, self._pull_future = self._pull_future, None
        if future is not None and not future.done():
            future.set_exception(StreamClosedError("stream closed"))
        # Drop every callback: they are bound to the stream's owner, which refers to the
        # stream, and a cycle would wait for the cycle collector -- with thousands of
        # closed connections, megabytes at a time.
        self._on_data = None
        self._on_eof = None
        self._drain_callback = None
        self._flushed_callbacks = []
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            self.loop.call_soon(callback)

    def reset(self) -> None:
        """Close with a reset: what the kernel still holds unsent is dropped too (a plain
        close would leave it queued, for a peer that may never read it)."""
        if not self.closed and self.socket.family in (socket.AF_INET, socket.AF_INET6):
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.close()

    def shut_after_flush(self, then: Callable[[], Any] | None = None) -> None:
        """Once everything queued has been sent, shut the sending side (a half-close: the
        peer reads the end of our data, and unread input of ours sends it no reset) and
        call ``then``; a failing shutdown closes the stream instead."""
        def shut() -> None:
            if self.closed:
                return
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                self.close()
                return
            if then is not None:
                then()

        self.on_flushed(shut)

    def close_after_flush(self) -> None:
        """Close once the write queue is empty (now, if it is)."""
        if not self._write_queue:
            self.close()
        else:
            self.pause_reading()
            self._flushed_callbacks.append(self.close)

