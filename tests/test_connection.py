"""HTTPConnection over a real socketpair, with a fake clock driving the timeouts."""

from __future__ import annotations

import gc
import io
import os
import socket
import struct
import threading
import time
import weakref
from dataclasses import dataclass, field

import pytest
from parser_backends import BACKENDS
from support import FakeClock, header_value, run_until

from wsgiloop.delegate import Request
from wsgiloop.http import HTTPLimits
from wsgiloop.ioloop import IOLoop
from wsgiloop.iostream import IOStream
from wsgiloop.params import ConnectionParameters
from wsgiloop.server import HTTPConnection

PEER = ("10.0.0.1", 4321)
SOCKNAME = ("10.0.0.2", 80)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


def parse_responses(data: bytes, eof: bool = False) -> tuple[list[Response], bytes]:
    """Complete responses at the start of ``data`` and the bytes left over."""
    responses = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        version, code, *reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        response = Response(int(code), reason[0] if reason else "", headers)  # type: ignore
        rest = data[end + 4:]
        if response.status < 200 or response.status in (204, 304):
            pass
        elif response.header("Content-Length") is not None:
            length = int(response.header("Content-Length"))  # type: ignore[arg-type]
            if len(rest) < length:
                break
            response.body, rest = rest[:length], rest[length:]
        elif (response.header("Transfer-Encoding") or "").lower() == "chunked":
            body = []
            pos = 0
            complete = False
            while True:
                line_end = rest.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size = int(rest[pos:line_end].split(b";")[0], 16)
                if len(rest) < line_end + 2 + size + 2:
                    break
                if size == 0:
                    trailer_end = rest.find(b"\r\n\r\n", line_end)
                    if rest[line_end:line_end + 4] == b"\r\n\r\n":
                        pos = line_end + 4
                    elif trailer_end >= 0:
                        pos = trailer_end + 4
                    else:
                        break
                    complete = True
                    break
                body.append(rest[line_end + 2:line_end + 2 + size])
                pos = line_end + 2 + size + 2
            if not complete:
                break
            response.body, rest = b"".join(body), rest[pos:]
        else:  # close-delimited
            if not eof:
                break
            response.body, rest = rest, b""
        responses.append(response)
        data = rest
    return responses, data


class Client:
    """The client end of the socketpair, non-blocking; ``pump`` collects what arrived."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.data = b""
        self.eof = False
        self.reset = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pump(self) -> None:
        while not self.eof:
            try:
                chunk = self.sock.recv(1 << 18)
            except BlockingIOError:
                return
            except ConnectionResetError:
                self.eof = self.reset = True
                return
            if not chunk:
                self.eof = True
                return
            self.data += chunk

    def responses(self) -> list[Response]:
        self.pump()
        return parse_responses(self.data, self.eof)[0]


class Harness:
    """One HTTPConnection on a fake-clocked loop, and the client end of its socket."""

    def __init__(self, delegate, **params) -> None:
        self.clock = FakeClock()
        self.loop = IOLoop(slow_callback_threshold=None, clock=self.clock)
        self.params = ConnectionParameters(**params)
        ours, theirs = socket.socketpair()
        self.stream = IOStream(ours, self.loop, high_water=self.params.high_water,
                               low_water=self.params.low_water)
        self.closed: list[HTTPConnection] = []
        self.conn = HTTPConnection(self.stream, self.loop, self.params, delegate, PEER,
                                   SOCKNAME, on_close=self.closed.append)
        self.client = Client(theirs)

    def run_until(self, predicate, timeout: float = 3.0) -> bool:
        """Run the loop until ``predicate()`` holds or ``timeout`` real seconds pass."""
        return run_until(self.loop, predicate, timeout)

    def settle(self, seconds: float = 0.05) -> None:
        """Run the loop for a short real time (the fake clock stands still)."""
        self.run_until(lambda: False, timeout=seconds)

    def advance(self, seconds: float) -> None:
        """Move the fake clock and let due timers fire."""
        self.clock.now += seconds
        self.settle(0.03)

    def wait_responses(self, count: int, timeout: float = 3.0) -> list[Response]:
        assert self.run_until(lambda: len(self.client.responses()) >= count, timeout), \
            f"expected {count} responses, got {self.client.data!r}"
        return self.client.responses()

    def wait_eof(self, timeout: float = 3.0) -> bool:
        return self.run_until(lambda: (self.client.pump(), self.client.eof)[1], timeout)

    def close(self) -> None:
        self.client.sock.close()
        self.stream.close()
        self.loop.close()


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest):
    """Harnesses; each test runs with both parser backends."""
    made: list[Harness] = []

    def factory(delegate, **params) -> Harness:
        params.setdefault("parser_class", request.param)
        harness = Harness(delegate, **params)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.close()


def get(path: str = "/", version: str = "1.1", extra: str = "") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: example.test\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: example.test\r\nContent-Length: {len(body)}\r\n"
            f"{extra}\r\n").encode() + body


def echo(request: Request, responder: HTTPConnection) -> None:
    """Answers at once with the method, the target and the body it received."""
    body = request.body.read() if request.body is not None else b""
    text = f"{request.head.method} {request.head.target} ".encode() + body
    responder.respond("200 OK", [("Content-Type", "text/plain")], text)


def pattern(size: int) -> bytes:
    block = b"".join(struct.pack(">I", i) for i in range(16384))
    return (block * (size // len(block) + 1))[:size]


# -- requests and responses -------------------------------------------------------------------


def test_request_gets_a_response_and_the_connection_stays_open(make):
    h = make(echo)
    h.client.send(get("/hello?x=1"))
    [response] = h.wait_responses(1)
    assert response.status == 200
    assert response.body == b"GET /hello?x=1 "
    assert response.header("Content-Length") == str(len(response.body))
    assert response.header("Content-Type") == "text/plain"
    assert response.header("Server") == "wsgiloop"
    assert response.header("Date")
    assert response.header("Connection") is None
    h.settle()
    assert not h.client.eof
    assert h.conn.idle
    # And it serves the next request.
    h.client.send(get("/again"))
    assert h.wait_responses(2)[1].body == b"GET /again "


def test_request_sees_peer_and_connection_data(make):
    seen = []

    def delegate(request, responder):
        seen.append((request.peer, request.sockname, request.scheme,
                     request.connection_data is responder.delegate_data))
        request.connection_data["count"] = request.connection_data.get("count", 0) + 1
        responder.respond("204 No Content", [], b"")

    h = make(delegate)
    h.client.send(get("/1") + get("/2"))
    responses = h.wait_responses(2)
    assert [r.status for r in responses] == [204, 204]
    assert seen == [(PEER, SOCKNAME, "http", True)] * 2
    assert h.conn.delegate_data["count"] == 2


def test_start_write_finish_streams_a_chunked_response(make):
    def delegate(request, responder):
        responder.start("200 OK", [("Content-Type", "text/plain")])
        assert not responder.head_sent
        assert responder.write(b"one,")
        assert responder.head_sent
        responder.write(b"")
        responder.write(b"two,")
        responder.write(b"three")
        responder.finish()
        responder.finish()  # a second finish is a no-op

    h = make(delegate)
    h.client.send(get("/stream"))
    [response] = h.wait_responses(1)
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.body == b"one,two,three"
    h.settle()
    assert not h.client.eof


# Streamed pieces on both sides of the size up to which a piece is copied onto its head
# or its chunk framing (over it, the pieces are queued apart and gathered by sendmsg).
PIECE_SIZES = [1, 0, 4095, 4096, 4097, 16384, 3, 70_000, 0, 5000]


@pytest.mark.parametrize("framing", ["chunked", "length", "close", "head"])
@pytest.mark.parametrize("first", [10, 50_000], ids=["small-first", "large-first"])
def test_streamed_pieces_of_every_size_go_out_framed_exactly(make, framing, first):
    sizes = [first, *PIECE_SIZES]
    body = pattern(sum(sizes))
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    pieces = [body[start:start + size] for start, size in zip(starts, sizes, strict=True)]

    def delegate(request, responder):
        headers = [("Content-Type", "application/octet-stream")]
        if framing == "length":
            headers.append(("Content-Length", str(len(body))))
        responder.start("200 OK", headers)
        for piece in pieces:
            responder.write(piece)
        responder.finish()

    h = make(delegate)
    method = "HEAD" if framing == "head" else "GET"
    version = "1.0" if framing == "close" else "1.1"
    h.client.send(f"{method} / HTTP/{version}\r\nHost: example.test\r\n\r\n".encode())
    if framing == "chunked":
        wire = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    elif framing == "head":
        wire = b""
    else:
        wire = body
    if framing == "close":
        assert h.wait_eof(timeout=10)
    else:
        assert h.run_until(lambda: (h.client.pump(), h.client.data.endswith(wire)
                                    and b"\r\n\r\n" in h.client.data)[1], timeout=10)
        h.settle()
    head, _, rest = h.client.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert (b"Transfer-Encoding: chunked" in head) == (framing == "chunked")
    assert rest == wire
    assert h.client.eof == (framing == "close")


def test_start_with_content_length_and_write_file(make, tmp_path):
    content = pattern(300_000)
    path = tmp_path / "payload.bin"
    path.write_bytes(content)
    files = []

    def delegate(request, responder):
        fd = os.open(path, os.O_RDONLY)
        files.append(fd)
        responder.start("200 OK", [("Content-Length", str(len(content) - 10))])
        responder.write_file(fd, 10, len(content) - 10)
        responder.stream.on_flushed(lambda: os.close(fd))
        responder.finish()

    h = make(delegate)
    h.client.send(get("/file"))
    [response] = h.wait_responses(1)
    assert response.body == content[10:]
    h.client.send(get("/file"))
    assert h.wait_responses(2)[1].body == content[10:]


def test_pipelined_requests_are_answered_in_order(make):
    h = make(echo)
    h.client.send(get("/a") + post("/b", b"body-b") + get("/c") + post("/d", b"body-d")
                  + get("/e"))
    responses = h.wait_responses(5)
    assert [r.body for r in responses] == [b"GET /a ", b"POST /b body-b", b"GET /c ",
                                           b"POST /d body-d", b"GET /e "]
    h.settle()
    assert len(h.client.responses()) == 5
    assert not h.client.eof


def test_pipelined_request_split_across_reads(make):
    h = make(echo)
    data = get("/a") + post("/b", b"0123456789") + get("/c")
    for i in range(0, len(data), 7):
        h.client.send(data[i:i + 7])
        h.settle(0.005)
    responses = h.wait_responses(3)
    assert [r.body for r in responses] == [b"GET /a ", b"POST /b 0123456789", b"GET /c "]


def test_delegate_finishing_later_gets_the_next_request_afterwards(make):
    events = []

    def delegate(request, responder):
        path = request.head.path
        events.append(("called", path))

        def finish_later(hops: int) -> None:
            if hops:
                h.loop.call_soon(finish_later, hops - 1)
                return
            events.append(("finished", path))
            responder.start("200 OK", [("Content-Type", "text/plain")])
            responder.write(path.encode())
            responder.finish()

        h.loop.call_soon(finish_later, 3)

    h = make(delegate)
    h.client.send(get("/1") + get("/2") + get("/3"))
    responses = h.wait_responses(3)
    assert [r.body for r in responses] == [b"/1", b"/2", b"/3"]
    assert events == [("called", "/1"), ("finished", "/1"),
                      ("called", "/2"), ("finished", "/2"),
                      ("called", "/3"), ("finished", "/3")]


def test_request_arriving_while_responding_waits_its_turn(make):
    pending = []

    def delegate(request, responder):
        pending.append((request.head.path, responder))

    h = make(delegate)
    h.client.send(get("/first"))
    assert h.run_until(lambda: len(pending) == 1)
    h.client.send(get("/second"))
    h.settle()
    assert [p for p, _ in pending] == ["/first"]  # not dispatched yet
    path, responder = pending.pop()
    responder.respond("200 OK", [], path.encode())
    assert h.run_until(lambda: len(pending) == 1)
    assert pending[0][0] == "/second"
    pending[0][1].respond("200 OK", [], b"/second")
    assert [r.body for r in h.wait_responses(2)] == [b"/first", b"/second"]


def test_http10_request_closes_after_the_response(make):
    h = make(echo, linger=2.0)
    h.client.send(get("/old", version="1.0"))
    [response] = h.wait_responses(1)
    assert response.header("Connection") == "close"
    assert h.wait_eof()
    assert not h.client.reset
    h.advance(2.5)  # past any linger time
    assert h.stream.closed
    assert h.closed == [h.conn]


def test_connection_close_request_closes_after_the_response(make):
    h = make(echo)
    h.client.send(get("/bye", extra="Connection: close\r\n") + get("/ignored"))
    assert h.wait_eof()
    responses = h.client.responses()
    assert [r.body for r in responses] == [b"GET /bye "]


def test_protocol_error_gets_400_and_close(make):
    calls = []
    h = make(lambda request, responder: calls.append(request))
    h.client.send(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert h.wait_eof()
    [response] = h.client.responses()
    assert response.status == 400
    assert response.header("Connection") == "close"
    assert calls == []


def test_exception_in_delegate_aborts_the_connection(make, caplog):
    def delegate(request, responder):
        raise RuntimeError("delegate blew up")

    h = make(delegate)
    h.client.send(get("/"))
    assert h.wait_eof()
    assert h.client.data == b""
    assert "delegate blew up" in caplog.text


# -- timeouts (fake clock) --------------------------------------------------------------------


def test_partial_head_past_header_timeout_gets_408_and_close(make):
    calls = []
    h = make(lambda request, responder: calls.append(request), header_timeout=10.0,
             linger=2.0)
    h.client.send(b"GET /slow HTTP/1.1\r\nHost: exa")
    h.settle()
    h.advance(9.0)
    assert h.client.responses() == [] and not h.client.eof
    h.advance(1.5)
    assert h.wait_eof()
    [response] = h.client.responses()
    assert response.status == 408
    assert response.header("Connection") == "close"
    assert calls == []
    h.advance(2.5)  # past the linger time
    assert h.stream.closed
    assert h.closed == [h.conn]


def test_header_timeout_counts_from_the_first_byte_of_the_head(make):
    h = make(echo, header_timeout=10.0, keepalive_timeout=5.0)
    h.client.send(get("/1"))
    h.wait_responses(1)
    h.advance(4.0)  # idle, within keep-alive
    h.client.send(b"GET /2 HTTP/1.1\r\n")
    h.settle()
    h.advance(8.0)  # 12 s since the response, 8 s into the head: still fine
    assert not h.client.eof
    h.client.send(b"Host: x\r\n\r\n")
    responses = h.wait_responses(2)
    assert responses[1].body == b"GET /2 "


def test_connection_without_any_request_closes_after_header_timeout(make):
    h = make(echo, header_timeout=10.0)
    h.advance(9.0)
    assert not h.stream.closed
    h.advance(1.5)
    assert h.wait_eof()
    assert h.client.data == b""
    assert h.stream.closed


def test_idle_keepalive_connection_closes_without_a_response(make):
    h = make(echo, header_timeout=10.0, keepalive_timeout=5.0)
    h.client.send(get("/"))
    h.wait_responses(1)
    received = len(h.client.data)
    h.advance(4.5)
    assert not h.stream.closed and not h.client.eof
    h.advance(1.0)
    assert h.wait_eof()
    assert len(h.client.data) == received  # nothing more was sent: no 408
    assert h.stream.closed
    assert h.closed == [h.conn]


def test_keepalive_timeout_restarts_after_each_response(make):
    h = make(echo, header_timeout=10.0, keepalive_timeout=5.0)
    h.client.send(get("/1"))
    h.wait_responses(1)
    h.advance(4.0)
    h.client.send(get("/2"))
    h.wait_responses(2)
    h.advance(4.0)  # 8 s since the first response, 4 s since the second
    assert not h.stream.closed
    h.advance(1.5)
    assert h.wait_eof()
    assert h.stream.closed


def test_stalled_body_past_body_timeout_gets_408(make):
    calls = []
    h = make(lambda request, responder: calls.append(request), header_timeout=5.0,
             body_timeout=8.0)
    h.client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                  + b"a" * 40)
    h.settle()
    h.advance(6.0)  # past the header timeout, but the head is complete
    assert h.client.responses() == [] and not h.client.eof
    h.advance(3.0)  # 9 s without body progress
    assert h.wait_eof()
    [response] = h.client.responses()
    assert response.status == 408
    assert calls == []


def test_body_progress_pushes_the_body_deadline_back(make):
    bodies = []

    def delegate(request, responder):
        bodies.append(request.body.read())
        responder.respond("200 OK", [], b"got it")

    # (No minimum rate here: 30 bytes in 18 s is far below any.)
    h = make(delegate, header_timeout=5.0, body_timeout=8.0, body_min_rate=0)
    h.client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
    for piece in (b"0123456789", b"abcdefghij"):
        h.settle(0.01)
        h.advance(6.0)
        h.client.send(piece)
        h.settle(0.01)
    h.advance(6.0)  # 18 s since the head, never 8 s without progress
    assert not h.client.eof
    h.client.send(b"KLMNOPQRST")
    [response] = h.wait_responses(1)
    assert response.body == b"got it"
    assert bodies == [b"0123456789abcdefghijKLMNOPQRST"]


def test_body_timeout_shorter_than_header_timeout_is_honoured(make):
    """A stalled body gets its 408 after ``body_timeout``, whatever the header timeout."""
    h = make(echo, header_timeout=10.0, body_timeout=2.0)
    h.client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    h.settle()
    h.advance(3.0)  # 3 s without body progress: past body_timeout
    assert h.wait_eof(timeout=1.0), "no 408 after body_timeout (the timer still waits " \
        "for the header deadline)"
    [response] = h.client.responses()
    assert response.status == 408


def test_header_timeout_shorter_than_keepalive_is_honoured_on_a_reused_connection(make):
    """A head started on a kept-alive connection must arrive within ``header_timeout``."""
    h = make(echo, header_timeout=2.0, keepalive_timeout=30.0)
    h.client.send(get("/1"))
    h.wait_responses(1)
    h.advance(10.0)  # idle a while: the timer now waits for the keep-alive deadline
    h.client.send(b"GET /2 HTTP/1.1\r\n")  # and then nothing more
    h.settle()
    h.advance(3.0)  # 3 s into the head: past header_timeout
    assert h.wait_eof(timeout=1.0), "no 408 after header_timeout (the timer still " \
        "waits for the keep-alive deadline)"
    assert h.client.responses()[-1].status == 408


# -- request bodies ---------------------------------------------------------------------------


def test_small_body_is_held_in_memory(make):
    seen = []

    def delegate(request, responder):
        seen.append((type(request.body), request.body_length, request.body.read()))
        responder.respond("200 OK", [], b"")

    h = make(delegate, spool_threshold=1024)
    h.client.send(post("/small", b"x" * 1000))
    h.wait_responses(1)
    assert seen == [(io.BytesIO, 1000, b"x" * 1000)]


def test_body_over_spool_threshold_is_a_real_temp_file(make):
    body = pattern(100_000)
    seen = {}

    def delegate(request, responder):
        f = request.body
        seen["type"] = type(f)
        seen["length"] = request.body_length
        seen["size"] = os.fstat(f.fileno()).st_size  # a real file descriptor
        seen["position"] = f.tell()
        seen["content"] = f.read()
        seen["file"] = f
        responder.respond("200 OK", [], b"stored")

    h = make(delegate, spool_threshold=4096)
    data = post("/big", body)
    h.client.send(data[:5000])  # the head and a first part, below the threshold
    h.settle()
    h.client.send(data[5000:])
    [response] = h.wait_responses(1)
    assert response.body == b"stored"
    assert not issubclass(seen["type"], io.BytesIO)
    assert seen["length"] == len(body)
    assert seen["size"] == len(body)
    assert seen["position"] == 0
    assert seen["content"] == body
    assert seen["file"].closed  # closed once the response completed


def test_chunked_body_over_spool_threshold_is_spooled(make):
    body = pattern(50_000)
    seen = []

    def delegate(request, responder):
        seen.append((isinstance(request.body, io.BytesIO), request.body_length,
                     request.body.read()))
        responder.respond("200 OK", [], b"ok")

    h = make(delegate, spool_threshold=8192)
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
                      for i in range(0, len(body), 7000))
    h.client.send(b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  + chunks + b"0\r\n\r\n")
    h.wait_responses(1)
    assert seen == [(False, len(body), body)]


def test_expect_100_continue_body_is_fetched_on_demand(make):
    seen = []

    def delegate(request, responder):
        seen.append(("deferred", request.body_deferred))

        def finished(error):
            seen.append(("body", error, request.body.read()))
            responder.respond("200 OK", [], b"continued")

        responder.receive_deferred_body(request, finished)

    h = make(delegate)
    h.client.send(post("/upload", b"payload", extra="Expect: 100-continue\r\n"))
    responses = h.wait_responses(2)
    assert [r.status for r in responses] == [100, 200]
    assert responses[1].body == b"continued"
    assert seen == [("deferred", True), ("body", None, b"payload")]


def test_read_body_refuses_to_block_the_loop_thread(make):
    errors = []

    def delegate(request, responder):
        try:
            request.read_body()
        except RuntimeError as exc:
            errors.append(str(exc))
        responder.respond("417 Expectation Failed", [], b"")

    h = make(delegate)
    h.client.send(post("/upload", b"payload", extra="Expect: 100-continue\r\n"))
    h.wait_responses(1)
    assert errors and "would block the loop" in errors[0]


def test_expect_body_sent_without_waiting_is_received_when_asked_for(make):
    """A client that sends a 100-continue body without waiting: while the request waits
    for the delegate, the body fills the parser's buffer and reading pauses; asking for
    the body must resume it (it used to stay paused until the body timed out: 408)."""
    body = pattern(32768)
    pending, outcome = [], []
    h = make(lambda request, responder: pending.append((request, responder)),
             limits=HTTPLimits(max_head_size=4096))
    h.stream.read_chunk_size = 4096
    data = post("/upload", body, extra="Expect: 100-continue\r\n")
    h.client.send(data[:-len(body) + 1024])
    assert h.run_until(lambda: pending)
    h.client.send(data[-len(body) + 1024:])
    assert h.run_until(lambda: h.stream.reading_paused)
    request, responder = pending[0]
    responder.receive_deferred_body(request, outcome.append)
    assert h.run_until(lambda: outcome)
    assert outcome == [None] and request.body.read() == body


# -- a client that half-closes ------------------------------------------------------------------
#
# A client may shut its sending side (``shutdown(SHUT_WR)``) once its requests are out.  What
# it sent in full is answered -- however late the answer -- and the connection then closes;
# an incomplete request gets a plain close.


def _holding(pending: list):
    """A delegate that answers nothing itself: it keeps (request, responder) for the test."""
    return lambda request, responder: pending.append((request, responder))


def _half_close(h: Harness, data: bytes) -> None:
    """Send ``data``, shut the client's sending side, and wait until the server saw it."""
    h.client.send(data)
    h.client.sock.shutdown(socket.SHUT_WR)
    assert h.run_until(lambda: h.stream.closed or h.stream.read_closed)


def test_half_closed_client_gets_an_answer_given_after_its_eof(make):
    pending = []
    h = make(_holding(pending))
    _half_close(h, get("/slow"))
    assert pending and not h.stream.closed
    pending[0][1].respond("200 OK", [], b"late but whole")
    assert h.wait_eof()
    [response] = h.client.responses()
    assert response.status == 200 and response.body == b"late but whole"
    assert not h.client.reset
    assert h.run_until(lambda: h.closed == [h.conn])


def test_half_closed_client_gets_every_pipelined_answer_in_order(make):
    """Two complete requests and the start of a third, then the half-close: both complete
    ones are answered, one after the other; the third gets no answer, the connection
    closes."""
    pending = []
    h = make(_holding(pending))
    _half_close(h, get("/1") + post("/2", b"two") + b"GET /3 HTTP/1.1\r\nHo")
    assert [r.head.path for r, _ in pending] == ["/1"]
    pending[0][1].respond("200 OK", [], b"first")
    assert h.run_until(lambda: len(pending) == 2)
    request, responder = pending[1]
    assert request.head.path == "/2" and request.body.read() == b"two"
    responder.respond("200 OK", [], b"second")
    assert h.wait_eof()
    assert [r.body for r in h.client.responses()] == [b"first", b"second"]
    assert len(pending) == 2 and not h.client.reset


@pytest.mark.parametrize("size", [7, 300_000])
def test_half_closed_client_with_expect_continue_gets_its_answer(make, size):
    """The whole 100-continue request, body included, then the half-close: the body is
    there when the delegate asks for it.  (A small one, with the end of input, has come
    by then; a large one has filled the buffers and waits for the delegate to ask.)"""
    body = pattern(size)
    pending, outcome = [], []
    h = make(_holding(pending))
    h.client.sock.setblocking(True)  # (a body larger than the socket buffers)
    sender = threading.Thread(target=_half_close_from_thread,
                              args=(h, post("/upload", body,
                                            extra="Expect: 100-continue\r\n")))
    sender.start()
    assert h.run_until(lambda: pending and (h.stream.read_closed or h.stream.reading_paused))
    request, responder = pending[0]
    assert request.body_deferred and not h.stream.closed
    responder.receive_deferred_body(request, outcome.append)
    assert h.run_until(lambda: outcome)
    sender.join()
    h.client.sock.setblocking(False)
    assert outcome == [None] and request.body.read() == body
    responder.respond("200 OK", [], b"got %d" % size)
    assert h.wait_eof()
    final = [(r.status, r.body) for r in h.client.responses() if r.status != 100]
    assert final == [(200, b"got %d" % size)]
    assert not h.client.reset


def _half_close_from_thread(h: Harness, data: bytes) -> None:
    h.client.sock.sendall(data)
    h.client.sock.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-continue"])
def test_half_close_before_the_body_is_complete_closes_without_an_answer(make, expect):
    """Half a body, then the half-close: the request cannot be answered, and the
    connection closes plainly (no reset) -- with 100-continue too, where the waiting
    delegate hears that the client has gone."""
    pending, outcome = [], []
    h = make(_holding(pending))
    extra = "Expect: 100-continue\r\n" if expect else ""
    _half_close(h, post("/upload", b"0123456789", extra=extra)[:-4])
    if expect:
        request, responder = pending[0]
        responder.receive_deferred_body(request, outcome.append)
        assert h.run_until(lambda: outcome)
        assert isinstance(outcome[0], ConnectionError)
        assert responder.client_gone
    else:
        assert not pending
    assert h.wait_eof()
    assert h.client.data == b"" and not h.client.reset
    assert h.run_until(lambda: h.closed == [h.conn])


def test_half_closed_client_gets_a_response_larger_than_the_socket_buffers(make):
    """The answer is given at once but does not fit the socket buffers: the half-close
    read meanwhile must not drop its unsent part."""
    payload = pattern(8 << 20)
    h = make(lambda request, responder: responder.respond("200 OK", [], payload))
    h.client.send(get("/big"))
    h.client.sock.shutdown(socket.SHUT_WR)
    assert h.wait_eof(timeout=10)
    [response] = h.client.responses()
    assert response.body == payload and not h.client.reset


def test_on_client_eof_tells_a_waiting_delegate_which_may_still_answer(make):
    """``on_client_eof`` callbacks run at the client's end of input while a response is
    pending (and soon after registering, for one that came before); the connection stays
    usable for the answer, and the callbacks of a finished response never run."""
    pending, events = [], []
    h = make(_holding(pending))
    h.client.send(get("/1") + get("/2"))
    assert h.run_until(lambda: pending)
    first = pending[0][1]
    first.on_client_eof(lambda: events.append("eof 1, answered first"))
    first.respond("200 OK", [], b"one")
    assert h.run_until(lambda: len(pending) == 2)
    second = pending[1][1]
    second.on_client_eof(lambda: events.append("eof 2"))
    h.client.sock.shutdown(socket.SHUT_WR)
    assert h.run_until(lambda: events)
    assert events == ["eof 2"] and not h.stream.closed
    second.on_client_eof(lambda: events.append("eof 2, late"))
    assert h.run_until(lambda: len(events) == 2)
    assert events == ["eof 2", "eof 2, late"]
    second.respond("200 OK", [], b"two")
    assert h.wait_eof()
    assert [r.body for r in h.client.responses()] == [b"one", b"two"]


# -- back-pressure and client loss ------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_back_pressure_with_when_writable(make, chunked):
    total = 4 << 20
    payload = pattern(total)
    state = {"offset": 0, "waits": 0, "writes_refused": 0, "done": False}

    def delegate(request, responder):
        responder.start("200 OK", [] if chunked else [("Content-Length", str(total))])

        def produce() -> None:
            while state["offset"] < total:
                chunk = payload[state["offset"]:state["offset"] + 32768]
                state["offset"] += len(chunk)
                if not responder.write(chunk):
                    state["writes_refused"] += 1
                    assert responder.stream.buffered_bytes > h.params.high_water
                    state["waits"] += 1
                    responder.when_writable(produce)
                    return
            responder.finish()
            state["done"] = True

        produce()

    h = make(delegate, high_water=16384, low_water=4096)
    h.client.send(get("/big"))
    h.settle(0.1)  # the client is not reading
    # Refused at least once: each refusal waits for a drain, and the drains stop once the
    # socket buffers are full.
    assert state["writes_refused"] >= 1
    assert not state["done"]
    assert state["offset"] < total
    stalled_at = state["offset"]
    h.settle(0.05)
    assert state["offset"] == stalled_at  # waiting for the drain, not producing
    [response] = h.wait_responses(1, timeout=10)
    assert state["done"]
    assert state["waits"] > 1
    assert response.body == payload
    assert (response.header("Transfer-Encoding") == "chunked") == chunked
    h.settle()
    assert not h.client.eof


@pytest.mark.parametrize("flat", [True, False])
def test_a_client_that_reads_no_answers_stops_being_read(make, flat):
    """A client that sends one request per read and reads none of the answers: once
    the unsent answers pass the high-water mark, no more of its requests are answered
    (or read) until it catches up; then every one is answered, in order."""
    size = 64 << 10
    answered: list[str] = []

    def delegate(request, responder):
        answered.append(request.head.path)
        responder.respond("200 OK", [("Content-Type", "application/octet-stream")],
                          request.head.path.encode().ljust(size, b"."))

    h = make(delegate, high_water=16384, low_water=4096, flat_path=flat)
    count = 40
    for number in range(count):
        h.client.send(get(f"/{number}"))
        h.settle(0.01)  # each request in a read of its own
    assert len(answered) < 10, answered
    assert h.stream.buffered_bytes <= h.params.high_water + size
    responses = h.wait_responses(count, timeout=30)
    assert [r.body[:len(str(n)) + 1] for n, r in enumerate(responses)] \
        == [f"/{n}".encode() for n in range(count)]
    assert answered == [f"/{n}" for n in range(count)]


def test_client_gone_runs_abort_callbacks_and_finish_is_harmless(make):
    pending = []
    aborted = []

    def delegate(request, responder):
        responder.on_abort(lambda: aborted.append(request.head.path))
        pending.append(responder)

    h = make(delegate)
    h.client.send(get("/slow"))
    assert h.run_until(lambda: pending)
    h.client.sock.close()
    assert h.run_until(lambda: aborted == ["/slow"])
    responder = pending[0]
    assert responder.client_gone
    responder.start("200 OK", [])
    responder.write(b"late")
    responder.finish()
    responder.abort()
    h.settle()
    assert h.closed == [h.conn]


def test_respond_after_client_gone_does_not_revive_the_connection(make):
    """``respond`` is start+write+finish: after the client left it must be a no-op too.

    Here a second request was pipelined behind the first; once the client is gone the
    delegate must not be handed that request, and the connection must not go idle again.
    """
    calls = []

    def delegate(request, responder):
        calls.append((request.head.path, responder))

    h = make(delegate)
    h.client.send(get("/1") + get("/2"))
    assert h.run_until(lambda: calls)
    h.client.sock.close()
    assert h.run_until(lambda: h.closed)
    _, responder = calls[0]
    responder.respond("200 OK", [], b"too late")
    h.settle()
    assert [path for path, _ in calls] == ["/1"]
    assert not h.conn.idle


# -- closed connections are freed --------------------------------------------------------------


def _loose_connections(loop: IOLoop, delegate, params: ConnectionParameters, count: int):
    """``count`` HTTPConnections that nothing but the loop refers to; returns weak
    references to them and to their streams, and the client sockets."""
    refs, clients = [], []
    for _ in range(count):
        ours, theirs = socket.socketpair()
        stream = IOStream(ours, loop, high_water=params.high_water, low_water=params.low_water)
        conn = HTTPConnection(stream, loop, params, delegate, PEER, SOCKNAME)
        refs += [weakref.ref(conn), weakref.ref(stream), weakref.ref(conn.parser)]
        clients.append(Client(theirs))
    return refs, clients


@pytest.mark.parametrize("how", ["header-timeout", "served-then-closed", "idle-timeout"])
def test_closed_connections_are_freed_without_the_cycle_collector(how):
    """Once closed, a connection, its stream and parser are freed by reference counting
    alone: no reference cycle keeps them (with a thousand stalled clients, waiting for
    the cycle collector let a worker grow by megabytes a round)."""
    clock = FakeClock()
    loop = IOLoop(slow_callback_threshold=None, clock=clock)
    params = ConnectionParameters(header_timeout=10.0, keepalive_timeout=5.0, linger=2.0)
    gc.collect()
    gc.disable()
    try:
        refs, clients = _loose_connections(loop, echo, params, 5)
        for client in clients:
            if how == "header-timeout":
                client.send(b"GET /slow HTTP/1.1\r\nHost: exa")
            else:
                client.send(get("/"))
        run_until(loop, lambda: False, 0.05)
        if how == "served-then-closed":
            assert run_until(loop, lambda: all(c.responses() for c in clients))
            for client in clients:
                client.sock.close()
        else:
            clock.now += 11.0  # the header (or keep-alive) deadline
            run_until(loop, lambda: False, 0.05)
            clock.now += 3.0  # past the linger time
        assert run_until(loop, lambda: all(ref() is None for ref in refs)), \
            [type(ref()).__name__ for ref in refs if ref() is not None]
        if how == "header-timeout":
            assert all(c.responses()[0].status == 408 for c in clients)
    finally:
        gc.enable()
        for client in clients:
            client.sock.close()
        loop.close()


# -- send timeout and minimum body rate (fake clock) -------------------------------------------


def _small_receive_buffer(h: Harness) -> None:
    h.client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    h.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


def test_response_nobody_takes_is_dropped_after_send_timeout(make, caplog):
    """A client that reads nothing: once no byte is taken for ``send_timeout`` the
    connection closes, the producer hears of it (its abort callback), and the unsent
    bytes are dropped."""
    events = []

    def delegate(request, responder):
        responder.on_abort(lambda: events.append("aborted"))
        responder.start("200 OK", [("Content-Length", str(64 << 20))])
        chunk = b"x" * 65536

        def produce() -> None:
            while responder.write(chunk):
                events.append("chunk")
            responder.when_writable(produce)

        produce()

    h = make(delegate, send_timeout=5.0, keepalive_timeout=30.0, high_water=65536,
             low_water=16384)
    _small_receive_buffer(h)
    caplog.set_level("INFO", "wsgiloop.error")
    h.client.send(get("/big"))
    h.settle(0.1)
    assert not h.stream.closed and h.stream.write_blocked
    assert h.stream.buffered_bytes <= 2 * 65536  # pulled only as the socket drains
    h.advance(4.0)
    assert not h.stream.closed
    h.advance(1.5)
    assert h.run_until(lambda: h.closed)
    assert h.stream.closed and h.stream.buffered_bytes == 0
    assert events[-1] == "aborted" and events.count("aborted") == 1
    assert events.count("chunk") < 8
    lines = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "INFO" and not lines[0].exc_info
    assert "sending to" in lines[0].getMessage()


@pytest.mark.parametrize("close", [False, True])
def test_whole_response_nobody_takes_is_dropped_after_send_timeout(make, close):
    """A response handed over whole (``respond``) is no longer the delegate's, but a
    reader that takes none of it still loses the connection after ``send_timeout`` --
    whether the connection would be kept alive or closed after it."""
    body = b"y" * (8 << 20)

    def delegate(request, responder):
        responder.respond("200 OK", [], body)

    h = make(delegate, send_timeout=5.0, keepalive_timeout=30.0)
    _small_receive_buffer(h)
    h.client.send(get("/big", extra="Connection: close\r\n" if close else ""))
    h.settle(0.1)
    assert h.stream.writing and not h.stream.closed
    h.advance(4.0)
    assert not h.stream.closed
    h.advance(1.5)
    assert h.run_until(lambda: h.closed)
    assert h.stream.closed


def test_slow_reader_making_progress_is_not_cut(make):
    """``send_timeout`` is about progress: a reader that takes a little within each
    period gets the whole response, however long it takes."""
    total = 256 * 1024
    body = pattern(total)

    def delegate(request, responder):
        responder.respond("200 OK", [], body)

    h = make(delegate, send_timeout=5.0, keepalive_timeout=30.0)
    _small_receive_buffer(h)
    h.client.send(get("/big"))
    h.settle(0.05)
    for _ in range(200):
        h.advance(3.0)  # 3 s at a time: never 5 s without progress
        try:
            h.client.data += h.client.sock.recv(8192)
        except BlockingIOError:
            pass
        if len(h.client.data) > total:
            break
    assert not h.stream.closed, len(h.client.data)
    [response] = h.wait_responses(1)
    assert response.body == body


def test_body_below_the_minimum_rate_gets_408(make, caplog):
    """A body trickled just often enough for ``body_timeout`` but below
    ``body_min_rate`` on average gets 408 once ``body_timeout`` has passed."""
    calls = []
    h = make(lambda request, responder: calls.append(request), body_timeout=10.0,
             body_min_rate=100, header_timeout=60.0)
    caplog.set_level("INFO", "wsgiloop.error")
    h.client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(4):  # 10 bytes every 3 s: progress, but 3 bytes/s
        h.settle(0.01)
        h.client.send(b"z" * 10)
        h.advance(3.0)
    assert h.wait_eof()
    [response] = h.client.responses()
    assert response.status == 408
    assert calls == []
    assert any("too slow" in r.getMessage() for r in caplog.records)


def test_body_at_the_minimum_rate_is_received(make):
    bodies = []

    def delegate(request, responder):
        bodies.append(request.body.read())
        responder.respond("200 OK", [], b"ok")

    h = make(delegate, body_timeout=10.0, body_min_rate=100, header_timeout=60.0)
    h.client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6000\r\n\r\n")
    for _ in range(20):  # 300 bytes every 2 s: 150 bytes/s
        h.settle(0.01)
        h.client.send(b"q" * 300)
        h.advance(2.0)
    [response] = h.wait_responses(1)
    assert response.status == 200
    assert bodies == [b"q" * 6000]


class _LateStart:
    """An iterable that calls start_response when iterated, as many do: it refers to
    start_response, a reference cycle through the gateway's response object, the
    request and the connection."""

    def __init__(self, start_response, count: int) -> None:
        self.start_response = start_response
        self.count = count

    def __iter__(self):
        self.start_response("200 OK", [("Content-Type", "text/plain")])
        for _ in range(self.count):
            yield b"z" * 65536

    def close(self) -> None:
        pass


def _generator_app(environ, start_response):
    return _LateStart(start_response, int(environ["QUERY_STRING"] or 1))


def _native_app():
    from wsgiloop.web import Application, RequestHandler

    class Big(RequestHandler):
        async def get(self) -> None:
            for _ in range(int(self.request.query or 1)):
                self.write(b"n" * 65536)
                await self.flush()

    return Application([("/", Big)])


def _have_read_a_little(clients: list[Client]) -> bool:
    """Whether every client has the start of its response.  One that has reads no more,
    so that a long response stalls part way (the server waiting for the client to read)
    instead of running to its end."""
    for client in clients:
        if len(client.data) <= 1000:
            client.pump()
    return all(len(client.data) > 1000 for client in clients)


@pytest.mark.parametrize("app", ["wsgi", "wsgi-threads", "native"])
@pytest.mark.parametrize("chunks", [1, 256])  # 256: the client leaves part way through
def test_served_connections_are_freed_without_the_cycle_collector(app, chunks):
    """After a response through the WSGI gateway (on the loop or on worker threads) or a
    native handler, finished or cut short by the client leaving, nothing keeps the
    connection: not the iterable's reference to start_response, not a worker thread's
    last task, not the traceback of the disconnect a handler was told of."""
    from wsgiloop.wsgi import WSGIGateway

    count = 3
    loop = IOLoop(slow_callback_threshold=None)
    if app == "native":
        delegate = _native_app()
    else:
        # A thread for each client: each response then runs while its client is there.
        delegate = WSGIGateway(_generator_app, threads=count if app == "wsgi-threads" else 0)
    gc.collect()
    gc.disable()
    try:
        refs, clients = _loose_connections(loop, delegate, ConnectionParameters(), count)
        for client in clients:
            client.send(get(f"/?{chunks}"))
        assert run_until(loop, lambda: _have_read_a_little(clients), 30.0), \
            [len(c.data) for c in clients]
        for client in clients:
            client.sock.close()
        assert run_until(loop, lambda: all(ref() is None for ref in refs), 30.0), \
            [type(ref()).__name__ for ref in refs if ref() is not None]
    finally:
        gc.enable()
        loop.close()


def test_worker_threads_grow_for_calls_submitted_together():
    """Two calls submitted back to back while the pool's one thread is idle both start:
    the idle thread takes one, a new thread the other (an idle thread not yet woken for
    the first used to count for both, and the second waited for the first to end)."""
    from wsgiloop.wsgi.threads import WorkerThreads

    pool = WorkerThreads(2)
    first = threading.Event()
    pool.submit(first.set)
    assert first.wait(10.0)
    while pool._idle == 0:  # the thread is back waiting for work
        time.sleep(0.001)
    started: list[int] = []
    both, release = threading.Semaphore(0), threading.Event()

    def call(n: int) -> None:
        started.append(n)
        both.release()
        release.wait(10.0)

    try:
        pool.submit(lambda: call(1))
        pool.submit(lambda: call(2))
        assert both.acquire(timeout=10.0) and both.acquire(timeout=10.0), started
    finally:
        release.set()


def test_a_pipelined_burst_does_not_hold_up_other_connections():
    """A client that pipelines many requests gets them answered in bursts: another
    connection's request, readable in the same loop pass, is answered before the
    bursting client's 17th.  Every request is still answered, in order."""
    loop = IOLoop(slow_callback_threshold=None)
    order: list[str] = []

    def delegate(request: Request, responder: HTTPConnection) -> None:
        order.append(request.head.target)
        responder.respond("200 OK", [], b"ok")

    clients = []
    try:
        for _ in range(2):
            ours, theirs = socket.socketpair()
            HTTPConnection(IOStream(ours, loop), loop, ConnectionParameters(), delegate,
                           PEER, SOCKNAME)
            clients.append(Client(theirs))
        bursting, other = clients
        bursting.sock.sendall(b"".join(get(f"/a{i}") for i in range(40)))
        other.sock.sendall(get("/b"))
        assert run_until(loop, lambda: len(order) == 41)
        assert [t for t in order if t.startswith("/a")] == [f"/a{i}" for i in range(40)]
        assert order.index("/b") < order.index("/a16")
        assert run_until(loop, lambda: bursting.pump() or bursting.data.count(b"200 OK") == 40)
    finally:
        for client in clients:
            client.sock.close()
        loop.close()
