"""IOStream over real sockets: pull and push reading, writes, files, back-pressure, resets."""

from __future__ import annotations

import array
import socket
import struct
import tempfile
import threading
import time

import pytest
from support import run_for, run_until

from wsgiloop.ioloop import IOLoop
from wsgiloop.iostream import BufferFullError, IOStream, StreamClosedError

MB = 1 << 20


@pytest.fixture
def loop():
    loop = IOLoop(slow_callback_threshold=None)
    yield loop
    loop.close()


@pytest.fixture
def pair():
    """(ours, peer): a connected AF_UNIX socketpair; ours goes into the IOStream."""
    ours, peer = socket.socketpair()
    yield ours, peer
    ours.close()
    peer.close()


@pytest.fixture
def tcp_pair():
    """(ours, peer): a connected loopback TCP pair; ours is the accepted end."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    listener.close()
    yield ours, peer
    ours.close()
    peer.close()


class Reader(threading.Thread):
    """Reads the peer end in a thread until ``total`` bytes (or EOF) arrived."""

    def __init__(self, sock: socket.socket, total: int | None = None,
                 start: threading.Event | None = None) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.total = total
        self.start_event = start
        self.chunks: list[bytes] = []
        self.received = 0
        self.eof = False

    def run(self) -> None:
        if self.start_event is not None:
            self.start_event.wait(10)
        self.sock.settimeout(10)
        while self.total is None or self.received < self.total:
            chunk = self.sock.recv(1 << 18)
            if not chunk:
                self.eof = True
                break
            self.chunks.append(chunk)
            self.received += len(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def pattern(size: int) -> bytes:
    """Bytes whose position is visible in them, so reordering or loss shows."""
    block = b"".join(struct.pack(">I", i) for i in range(16384))  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def result_of(loop: IOLoop, future, timeout: float = 3.0):
    assert run_until(loop, future.done, timeout), "the future did not complete"
    return future.result()


# -- pull reading ---------------------------------------------------------------------------


def test_read_until_delimiter(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    peer.sendall(b"first line\r\nsecond line\r\nrest")
    assert result_of(loop, stream.read_until(b"\r\n")) == b"first line\r\n"
    # The next one is served from what is already buffered.
    assert result_of(loop, stream.read_until(b"\r\n")) == b"second line\r\n"
    assert result_of(loop, stream.read_bytes(4)) == b"rest"
    assert not stream.closed
    stream.close()


def test_read_until_delimiter_split_across_sends(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    future = stream.read_until(b"\r\n\r\n")
    peer.sendall(b"GET / HTTP/1.1\r\nHost: x\r")
    run_for(loop, 0.03)
    assert not future.done()
    peer.sendall(b"\n\r")
    run_for(loop, 0.03)
    assert not future.done()
    peer.sendall(b"\nbody")
    assert result_of(loop, future) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert result_of(loop, stream.read_bytes(4)) == b"body"
    stream.close()


def test_read_until_over_max_bytes_fails_and_closes(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    closed = []
    stream.set_close_callback(lambda: closed.append(True))
    future = stream.read_until(b"\n", max_bytes=100)
    peer.sendall(b"x" * 500)
    assert run_until(loop, future.done)
    with pytest.raises(BufferFullError):
        future.result()
    assert stream.closed
    assert run_until(loop, lambda: closed == [True])


def test_read_until_delimiter_found_beyond_max_bytes_fails(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    peer.sendall(b"y" * 50 + b"\n")
    run_for(loop, 0.03)  # everything is buffered before the read starts
    future = stream.read_until(b"\n", max_bytes=20)
    assert run_until(loop, future.done)
    assert isinstance(future.exception(), BufferFullError)
    assert stream.closed


def test_read_until_exactly_max_bytes_is_allowed(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    peer.sendall(b"z" * 9 + b"\n")
    assert result_of(loop, stream.read_until(b"\n", max_bytes=10)) == b"z" * 9 + b"\n"
    stream.close()


def test_read_bytes_collects_pieces(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    future = stream.read_bytes(10)
    peer.sendall(b"12345")
    run_for(loop, 0.03)
    assert not future.done()
    peer.sendall(b"6789012")
    assert result_of(loop, future) == b"1234567890"
    assert result_of(loop, stream.read_bytes(2)) == b"12"
    stream.close()


def test_second_pending_read_is_refused(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    stream.read_bytes(5)
    with pytest.raises(RuntimeError):
        stream.read_until(b"\n")
    stream.close()


def test_pending_read_fails_when_peer_closes(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    future = stream.read_until(b"\n")
    peer.sendall(b"no newline")
    peer.close()
    assert run_until(loop, future.done)
    assert isinstance(future.exception(), StreamClosedError)
    assert stream.closed
    assert stream.error is None
    later = stream.read_bytes(1)
    assert isinstance(later.exception(), StreamClosedError)


def test_unread_data_over_the_buffer_limit_fails_the_stream(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop, max_buffer_size=1000, read_chunk_size=600)
    peer.sendall(b"q" * 5000)
    assert run_until(loop, lambda: stream.closed)
    assert isinstance(stream.error, BufferFullError)


# -- push reading ---------------------------------------------------------------------------


def test_push_mode_delivers_every_chunk_in_order(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    received = []
    stream.start_reading(received.append)
    for i in range(5):
        peer.sendall(b"chunk%d;" % i)
        run_for(loop, 0.01)
    assert run_until(loop, lambda: b"".join(received) == b"chunk0;chunk1;chunk2;chunk3;chunk4;")
    stream.close()


def test_start_reading_first_delivers_what_was_buffered(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    peer.sendall(b"line\r\nleftover")
    assert result_of(loop, stream.read_until(b"\r\n")) == b"line\r\n"
    run_for(loop, 0.02)
    received = []
    stream.start_reading(received.append)
    peer.sendall(b"+more")  # arrives while "leftover" waits for delivery
    assert run_until(loop, lambda: sum(map(len, received)) == len(b"leftover+more"))
    assert b"".join(received) == b"leftover+more"  # in order: buffered bytes first
    stream.close()


def test_pause_reading_stops_delivery_and_resume_restores_it(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    received = []
    stream.start_reading(received.append)
    peer.sendall(b"before")
    assert run_until(loop, lambda: b"".join(received) == b"before")

    stream.pause_reading()
    assert stream.reading_paused
    peer.sendall(b"during")
    run_for(loop, 0.1)
    assert b"".join(received) == b"before"

    stream.resume_reading()
    assert not stream.reading_paused
    assert run_until(loop, lambda: b"".join(received) == b"beforeduring")
    peer.sendall(b"after")
    assert run_until(loop, lambda: b"".join(received) == b"beforeduringafter")
    stream.close()


def test_paused_stream_exerts_back_pressure_on_the_peer(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop, read_chunk_size=65536)
    received = []
    stream.start_reading(received.append)
    stream.pause_reading()
    peer.setblocking(False)
    sent = 0
    try:
        while sent < 64 * MB:  # the kernel buffers fill up: nobody reads
            sent += peer.send(b"p" * 65536)
            run_for(loop, 0.001)
    except BlockingIOError:
        pass
    assert sent < 64 * MB
    assert received == []
    stream.resume_reading()
    assert run_until(loop, lambda: sum(map(len, received)) == sent, timeout=5)
    stream.close()


def test_peer_eof_closes_the_stream_quietly(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    closed = []
    received = []
    stream.set_close_callback(lambda: closed.append(True))
    stream.start_reading(received.append)
    peer.sendall(b"last words")
    peer.shutdown(socket.SHUT_WR)
    assert run_until(loop, lambda: closed == [True])
    assert b"".join(received) == b"last words"
    assert stream.closed
    assert stream.error is None


class _CountingSocket(socket.socket):
    """A socket that counts its ``recv`` calls."""

    recvs = 0

    def recv(self, *args):  # type: ignore[override]
        self.recvs += 1
        return super().recv(*args)


def test_peer_eof_with_on_eof_stops_reading_and_keeps_writing(loop, tcp_pair):
    """With ``on_eof``, the peer's half-close is reported after the last chunk; reading
    stops for good (the socket is not polled for the end again and again) while writing
    goes on: what is written afterwards reaches the peer."""
    ours, peer = tcp_pair
    counting = _CountingSocket(fileno=ours.detach())
    stream = IOStream(counting, loop)
    events: list = []
    stream.set_close_callback(lambda: events.append("closed"))
    stream.start_reading(events.append, lambda: events.append("eof"))
    peer.sendall(b"last words")
    peer.shutdown(socket.SHUT_WR)
    assert run_until(loop, lambda: "eof" in events)
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"last words"
    assert events[-1] == "eof"
    assert stream.read_closed and not stream.closed
    recvs = counting.recvs
    stream.resume_reading()  # harmless: the input has ended
    run_for(loop, 0.05)
    assert counting.recvs == recvs
    stream.write(b"the answer")
    stream.close_after_flush()
    assert run_until(loop, lambda: "closed" in events)
    peer.settimeout(5)
    assert peer.recv(100) == b"the answer"
    assert peer.recv(100) == b""
    counting.close()


# -- writing --------------------------------------------------------------------------------


def test_small_write_goes_out_at_the_end_of_the_loop_pass(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    stream.write(b"hel")
    stream.write(b"lo")
    assert stream.buffered_bytes == 5  # held for the end of the pass: one send for both
    assert stream.writing
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert stream.buffered_bytes == 0
    assert not stream.writing
    assert peer.recv(100) == b"hello"
    stream.close()


def test_large_write_to_a_peer_that_does_not_read(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)  # high_water 1 MiB, low_water 64 KiB
    payload = pattern(8 * MB)
    levels = []
    for i in range(8):
        stream.write(payload[i * MB:(i + 1) * MB])
        levels.append(stream.buffered_bytes)
    assert levels == sorted(levels)
    assert levels[-1] > levels[0]
    assert stream.buffered_bytes > stream.high_water
    assert stream.over_high_water
    assert stream.writing

    drained = []
    go = threading.Event()
    reader = Reader(peer, total=len(payload), start=go)
    reader.start()
    stream.set_drain_callback(lambda: drained.append(reader.received))
    run_for(loop, 0.1)
    assert drained == []  # nobody has read yet
    assert stream.over_high_water

    go.set()
    assert run_until(loop, lambda: drained and reader.received == len(payload), timeout=10)
    reader.join(5)
    assert len(drained) == 1
    assert drained[0] > 0  # only after the peer read something
    assert reader.data == payload
    assert stream.buffered_bytes == 0
    assert not stream.over_high_water
    stream.close()


def test_many_small_queued_writes_arrive_in_order(loop, pair):
    """More queued pieces than one sendmsg takes (IOV_MAX), split at odd places."""
    ours, peer = pair
    stream = IOStream(ours, loop)
    stream.write(pattern(2 * MB))  # fill the socket buffer so the rest queues
    pieces = [b"<%05d:" % i + b"." * (i % 97) + b">" for i in range(5000)]
    for piece in pieces:
        stream.write(piece)
    expected = pattern(2 * MB) + b"".join(pieces)
    assert stream.buffered_bytes > len(b"".join(pieces))
    reader = Reader(peer, total=len(expected))
    reader.start()
    assert run_until(loop, lambda: not stream.writing, timeout=10)
    reader.join(5)
    assert reader.data == expected
    stream.close()


def test_writelines_queues_each_buffer_in_order(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    reused = bytearray(b"mutable")
    big = pattern(300_000)
    words = array.array("i", [1, 2, 3, 4])  # 16 bytes in 4 items
    stream.writelines([b"head:", b"", reused, memoryview(big), words, b":tail"])
    reused[:] = b"changed"  # the stream kept its own copy of a buffer that is not bytes
    assert stream.buffered_bytes == 5 + 7 + len(big) + 16 + 5  # bytes, not items
    reader = Reader(peer, total=stream.buffered_bytes)
    reader.start()
    assert run_until(loop, lambda: not stream.writing, timeout=10)
    reader.join(5)
    assert reader.data == b"head:mutable" + big + words.tobytes() + b":tail"
    assert stream.buffered_bytes == 0
    stream.close()


def test_drain_callback_runs_soon_when_already_below_low_water(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    stream.write(b"small")
    drained = []
    stream.set_drain_callback(lambda: drained.append(1))
    assert drained == []  # never inline
    assert run_until(loop, lambda: drained == [1])
    stream.close()


def test_on_flushed_waits_for_the_queue_to_empty(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    flushed = []
    stream.on_flushed(lambda: flushed.append("empty queue"))
    assert flushed == []  # not inline even with nothing queued
    assert run_until(loop, lambda: flushed == ["empty queue"])

    payload = pattern(4 * MB)
    stream.write(payload)
    assert stream.writing
    stream.on_flushed(lambda: flushed.append("big write"))
    run_for(loop, 0.05)
    assert flushed == ["empty queue"]

    reader = Reader(peer, total=len(payload))
    reader.start()
    assert run_until(loop, lambda: len(flushed) == 2, timeout=10)
    assert flushed[1] == "big write"
    assert not stream.writing
    reader.join(5)
    assert reader.data == payload
    stream.close()


def test_close_after_flush_delivers_everything_then_eof(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    payload = pattern(3 * MB)
    stream.write(payload)
    stream.close_after_flush()
    assert not stream.closed
    reader = Reader(peer)  # until EOF
    reader.start()
    assert run_until(loop, lambda: stream.closed, timeout=10)
    reader.join(5)
    assert reader.eof
    assert reader.data == payload


def test_writes_after_close_are_ignored(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    stream.close()
    stream.write(b"dropped")
    stream.write_file(0, 0, 10)
    assert stream.buffered_bytes == 0
    assert stream.closed


@pytest.mark.parametrize("use_sendfile", [True, False], ids=["sendfile", "read-write"])
def test_write_file_arrives_whole(loop, pair, use_sendfile):
    ours, peer = pair
    stream = IOStream(ours, loop, use_sendfile=use_sendfile)
    content = pattern(3 * MB + 12345)
    with tempfile.TemporaryFile() as f:
        f.write(content)
        f.flush()
        flushed = []
        stream.write(b"HEAD")
        stream.write_file(f.fileno(), 0, len(content))
        stream.write(b"TAIL")
        stream.on_flushed(lambda: flushed.append(True))
        reader = Reader(peer, total=len(content) + 8)
        reader.start()
        assert run_until(loop, lambda: flushed == [True], timeout=10)
        reader.join(5)
    assert reader.received == len(content) + 8
    assert reader.data == b"HEAD" + content + b"TAIL"
    stream.close()


@pytest.mark.parametrize("use_sendfile", [True, False], ids=["sendfile", "read-write"])
def test_write_file_range_and_short_file(loop, pair, use_sendfile):
    ours, peer = pair
    stream = IOStream(ours, loop, use_sendfile=use_sendfile)
    content = pattern(200_000)
    with tempfile.TemporaryFile() as f:
        f.write(content)
        f.flush()
        stream.write_file(f.fileno(), 1000, 50_000)
        # A file shorter than promised sends what there is instead of hanging.
        stream.write_file(f.fileno(), 190_000, 50_000)
        flushed = []
        stream.on_flushed(lambda: flushed.append(True))
        reader = Reader(peer, total=60_000)
        reader.start()
        assert run_until(loop, lambda: flushed == [True], timeout=5)
        reader.join(5)
    assert reader.data == content[1000:51_000] + content[190_000:]
    stream.close()


def test_drain_waits_for_a_queued_file(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    content = pattern(4 * MB)
    with tempfile.TemporaryFile() as f:
        f.write(content)
        f.flush()
        stream.write_file(f.fileno(), 0, len(content))
        drained = []
        stream.set_drain_callback(lambda: drained.append(True))
        run_for(loop, 0.05)
        assert drained == []  # the file is still queued, though buffered_bytes is 0
        reader = Reader(peer, total=len(content))
        reader.start()
        assert run_until(loop, lambda: drained == [True], timeout=10)
        reader.join(5)
    assert reader.data == content
    stream.close()


@pytest.mark.parametrize("use_sendfile", [True, False], ids=["sendfile", "read-write"])
def test_buffers_and_files_interleaved_arrive_in_order(loop, pair, use_sendfile):
    """Buffers gathered around files, with the socket full at odd places; once all is
    sent, no file is counted as queued any more (the drain callback comes at once)."""
    ours, peer = pair
    stream = IOStream(ours, loop, use_sendfile=use_sendfile)
    content = pattern(700_000)
    expected = []
    with tempfile.TemporaryFile() as f:
        f.write(content)
        f.flush()
        for i in range(6):
            for j in range(40):
                piece = b"<%d.%d:" % (i, j) + b"." * (j * 977 % 20000) + b">"
                stream.write(piece)
                expected.append(piece)
            if i % 2 == 0:
                stream.write_file(f.fileno(), i * 1000, 300_000)
                expected.append(content[i * 1000:i * 1000 + 300_000])
        total = sum(map(len, expected))
        reader = Reader(peer, total=total)
        reader.start()
        assert run_until(loop, lambda: not stream.writing, timeout=10)
        reader.join(5)
    assert reader.data == b"".join(expected)
    drained = []
    stream.set_drain_callback(lambda: drained.append(True))
    assert run_until(loop, lambda: drained == [True])
    stream.close()


# -- resets and TCP ---------------------------------------------------------------------------


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_peer_reset_closes_quietly_in_pull_mode(loop, tcp_pair):
    ours, peer = tcp_pair
    stream = IOStream(ours, loop)
    closed = []
    stream.set_close_callback(lambda: closed.append("first"))
    stream.set_close_callback(lambda: closed.append("second"))
    future = stream.read_until(b"\n")
    peer.sendall(b"partial")
    run_for(loop, 0.02)
    reset(peer)
    assert run_until(loop, lambda: closed == ["first", "second"])
    assert stream.closed
    assert stream.error is None
    assert isinstance(future.exception(), StreamClosedError)


def test_peer_reset_closes_quietly_in_push_mode_with_writes_pending(loop, tcp_pair):
    ours, peer = tcp_pair
    stream = IOStream(ours, loop)
    closed = []
    stream.set_close_callback(lambda: closed.append(True))
    stream.start_reading(lambda data: None)
    stream.write(pattern(8 * MB))  # more than loopback buffers hold
    assert stream.writing
    drained = []
    stream.set_drain_callback(lambda: drained.append(True))
    reset(peer)
    assert run_until(loop, lambda: closed == [True])
    assert stream.closed
    assert stream.error is None
    assert stream.buffered_bytes == 0
    assert drained == []  # dropped, never called


def test_write_to_a_reset_peer_closes_quietly(loop, tcp_pair):
    ours, peer = tcp_pair
    stream = IOStream(ours, loop)
    closed = []
    stream.set_close_callback(lambda: closed.append(True))
    reset(peer)
    time.sleep(0.02)
    for _ in range(3):  # the first send may still succeed; a later one sees the reset
        stream.write(b"x" * 1000)
    assert run_until(loop, lambda: closed == [True])
    assert stream.error is None


def test_tcp_nodelay_is_set_for_tcp_sockets(loop, tcp_pair):
    ours, peer = tcp_pair
    assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    stream = IOStream(ours, loop)
    assert stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert not stream.socket.getblocking()
    stream.close()


def test_unix_socket_stream_works_without_tcp_options(loop, pair):
    ours, peer = pair
    assert ours.family == socket.AF_UNIX
    stream = IOStream(ours, loop)
    assert not stream.socket.getblocking()
    stream.write(b"ok")
    stream.flush()
    assert peer.recv(10) == b"ok"
    stream.close()


def test_close_drops_queue_and_runs_close_callbacks_soon(loop, pair):
    ours, peer = pair
    stream = IOStream(ours, loop)
    stream.write(pattern(4 * MB))
    flushed = []
    closed = []
    stream.on_flushed(lambda: flushed.append(True))
    stream.set_close_callback(lambda: closed.append(True))
    fd = stream.fileno
    stream.close()
    stream.close()  # twice is harmless
    assert closed == []  # soon, not inline
    assert stream.buffered_bytes == 0 and not stream.writing
    assert fd not in loop._handlers
    assert run_until(loop, lambda: closed == [True])
    assert flushed == []


# -- write progress, reset, and what a closed stream keeps -------------------------------------


def test_write_blocked_and_write_progress_follow_the_socket(pair):
    """``write_blocked`` is set while the socket refuses part of the queue, and
    ``write_progress`` moves only when the socket takes bytes."""
    now = [100.0]
    loop = IOLoop(slow_callback_threshold=None, clock=lambda: now[0])
    ours, peer = pair
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    stream = IOStream(ours, loop)
    try:
        stream.write(b"a" * 100)
        run_for(loop, 0.02)
        assert not stream.write_blocked  # all taken at once
        stream.write(b"x" * MB)
        run_for(loop, 0.02)
        assert stream.write_blocked and stream.write_progress == 100.0
        now[0] = 105.0
        run_for(loop, 0.05)  # the peer reads nothing: no progress
        assert stream.write_blocked and stream.write_progress == 100.0
        peer.settimeout(5)
        peer.recv(65536)
        assert run_until(loop, lambda: stream.write_progress == 105.0)
        while stream.writing:
            peer.recv(MB)
            run_for(loop, 0.005)
        assert not stream.write_blocked
    finally:
        stream.close()
        loop.close()


def test_reset_drops_what_the_kernel_has_not_sent(loop, tcp_pair):
    """``reset`` aborts the connection: the peer is not sent the kernel's queued bytes
    (a plain close would deliver them all, then EOF)."""
    ours, peer = tcp_pair
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = IOStream(ours, loop)
    stream.write(b"r" * (8 * MB))
    run_for(loop, 0.1)
    assert stream.write_blocked
    stream.reset()
    assert stream.closed
    peer.settimeout(5)
    received = 0
    with pytest.raises(ConnectionResetError):
        while True:
            chunk = peer.recv(MB)
            assert chunk, "EOF instead of a reset"
            received += len(chunk)
    assert received < 4 * MB


def test_closed_stream_lets_go_of_its_callbacks(loop, pair):
    """A closed stream keeps no callback of its owner, so the owner (which refers to the
    stream) is freed by reference counting, without the cycle collector."""
    ours, _ = pair

    class Owner:
        def on_data(self, data: bytes) -> None: ...

        def on_drain(self) -> None: ...

    owner = Owner()
    stream = IOStream(ours, loop)
    owner.stream = stream  # type: ignore[attr-defined]
    stream.start_reading(owner.on_data)
    stream.write(b"x" * (4 * MB))
    stream.set_drain_callback(owner.on_drain)
    stream.on_flushed(owner.on_drain)
    stream.close()
    run_for(loop, 0.02)
    assert stream._on_data is None and stream._drain_callback is None
    assert not stream._flushed_callbacks and not stream._close_callbacks
