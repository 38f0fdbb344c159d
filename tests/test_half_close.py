"""A client that half-closes (``shutdown(SHUT_WR)``) after its requests gets every answer.

Issue 9, "no request left unanswered": each complete request a client sent before shutting
its sending side is answered, and then the connection closes; a request that is not
complete gets a plain close (no answer, no reset), with or without ``Expect:
100-continue``.  The server used to take the client's end of input for its departure: the
answer came only when it was given before the end of input was read -- sometimes (on
the loop), rarely (a 100-continue body, read by a worker thread) or never (with
``--threads``).  Each exchange is therefore repeated many times, on a server that runs the
application on the loop and on one with worker threads.
"""

from __future__ import annotations

import http.client
import io
import socket

import pytest
from support import ServerProcess, assert_no_validator_complaints

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
SMALL = b"a body that fits one read"
LARGE = bytes(range(256)) * 1200  # 300 kB: many reads, more than the parser buffers


@pytest.fixture(scope="module", params=["loop", "threads"])
def server(request):
    args = ("--threads", "2") if request.param == "threads" else ()
    with ServerProcess("apps:combined", "--workers", "1", *args) as s:
        yield s
    assert_no_validator_complaints(s)


def post(body: bytes, expect: bool = False, path: str = "/echo") -> bytes:
    fields = "Expect: 100-continue\r\n" if expect else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{fields}Content-Length: {len(body)}\r\n"
            "\r\n").encode() + body


def exchange(server: ServerProcess, *pieces: bytes) -> bytes:
    """Send ``pieces`` (each with its own send), half-close, and read until the server
    closes; what came back, without interim 100 responses.  A reset fails the test."""
    with server.connect(timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    return b"".join(chunks).replace(CONTINUE, b"")


class _KeptOpen(io.BytesIO):
    def close(self) -> None:
        """Each HTTPResponse closes its file; the next one reads on."""


class _Replies:
    """Lets :class:`http.client.HTTPResponse` read one response after another."""

    def __init__(self, data: bytes) -> None:
        self.file = _KeptOpen(data)

    def makefile(self, *args: object) -> io.BytesIO:
        return self.file


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in ``data``, which must hold nothing else."""
    replies = _Replies(data)
    found = []
    while replies.file.tell() < len(data):
        response = http.client.HTTPResponse(replies)  # type: ignore[arg-type]
        response.begin()
        found.append((response.status, response.read()))
    return found


@pytest.mark.parametrize("expect", [True, False], ids=["expect-continue", "plain"])
@pytest.mark.parametrize("body", [SMALL, LARGE], ids=["small", "large"])
def test_complete_request_then_half_close_is_always_answered(server, expect, body):
    """The whole request in one go (the client does not wait for a 100), then the
    half-close: a 200 with the body echoed, every time."""
    data = post(body, expect)
    rounds = 200 if body is SMALL else 40
    answers = [responses(exchange(server, data)) for _ in range(rounds)]
    unanswered = sum(answer != [(200, body)] for answer in answers)
    assert unanswered == 0, f"{unanswered} of {rounds} not answered with the echo"


@pytest.mark.parametrize("body", [SMALL, LARGE], ids=["small", "large"])
def test_expect_continue_head_then_body_then_half_close_is_answered(server, body):
    """Head and body in separate sends, the 100 not waited for, then the half-close."""
    data = post(body, expect=True)
    head, rest = data[:-len(body)], data[-len(body):]
    rounds = 100 if body is SMALL else 20
    answers = [responses(exchange(server, head, rest)) for _ in range(rounds)]
    unanswered = sum(answer != [(200, body)] for answer in answers)
    assert unanswered == 0, f"{unanswered} of {rounds} not answered with the echo"


def test_pipelined_requests_then_half_close_are_all_answered_in_order(server):
    data = post(b"one", expect=True) + post(b"two") + post(b"three", expect=True)
    for _ in range(100):
        assert responses(exchange(server, data)) == [(200, b"one"), (200, b"two"),
                                                     (200, b"three")]


def test_request_the_app_answers_without_reading_its_body(server):
    """A 100-continue request answered without reading the body (a 401), whole body
    sent anyway, then the half-close: the answer comes, and the connection closes."""
    data = post(SMALL, expect=True, path="/expect-reject")
    for _ in range(100):
        [(status, _)] = responses(exchange(server, data))
        assert status == 401


@pytest.mark.parametrize("expect", [True, False], ids=["expect-continue", "plain"])
def test_incomplete_body_then_half_close_gets_a_plain_close(server, expect):
    """Part of the body, then the half-close: the request can't be answered; the server
    closes without a reply (and without a reset), 100-continue or not."""
    data = post(SMALL, expect)[:-5]
    for _ in range(50):
        assert exchange(server, data) == b""
    # and the server is fine
    assert responses(exchange(server, post(SMALL, expect))) == [(200, SMALL)]


def test_large_response_after_half_close_arrives_whole(server):
    """An answer much larger than the socket buffers: the end of input read while it is
    being sent must not cut it."""
    size = 16 << 20
    for _ in range(3):
        [(status, body)] = responses(exchange(
            server, f"GET /raw/blob?n={size} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))
        assert status == 200 and len(body) == size
