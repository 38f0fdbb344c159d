"""A fresh worker and a warmed one must answer every request alike (issue 9), and so
must the two parser backends (issue 11).

Two one-worker servers run ``apps:request_echo``, for each parser backend: the fresh one
always with the Python parser, the warm one with the backend under test, so that on the
httptools leg the two backends' answers are compared byte for byte too.  The fresh one
replaces its worker after every request (``--max-requests 1``), so each connection meets
a newly forked worker that has parsed nothing before.  The warm one is first sent a few
hundred requests, valid and invalid: every case of ``tests/http_corpus.py`` and a valid
request for each field name the generated requests use, in three spellings.  Then
Hypothesis draws requests (valid, pipelined, mutated, and changed where parsers are
known to differ) and each goes, on a new connection, to both servers; the responses
(status lines, fields but Date, bodies) must be the same bytes --
but for what the fresh worker's retirement changes (see :func:`answered_alike`).

Each exchange sends the bytes, half-closes, and reads until the server closes, so no
test waits for a timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket

import pytest
from http_corpus import CASES
from http_strategies import FIELD_NAMES, any_input, edge_requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_backends import BACKEND_NAMES
from support import ServerProcess

_DATE = re.compile(rb"\r\nDate: [^\r\n]*")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSING = b"Connection: close\r\n"


def exchange(server: ServerProcess, data: bytes, timeout: float = 10.0) -> bytes:
    """Everything the server sends back for ``data`` on a new connection, Date fields and
    interim 100 responses (sent or not depending on how the bytes arrived) removed."""
    with server.connect(timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before everything was sent: what came back still counts
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return _DATE.sub(b"", b"".join(chunks).replace(_CONTINUE, b""))


def answered_alike(fresh: bytes, warm: bytes) -> bool:
    """The same answers from the fresh and the warm worker.

    The fresh worker retires after its first response (``--max-requests 1``), and a
    retiring worker closes each connection after the response it is giving.  A pipelined
    request answered in the same loop pass as the first one is not affected, but one
    answered later -- a 100-continue request, whose application runs on a worker
    thread -- says ``Connection: close`` there, and the connection closes after it.  That
    field, in a response after the first, and answers that stop there are the one
    difference allowed: without the field, ``fresh`` must be the start of ``warm``.
    """
    if fresh == warm:
        return True
    at = len(os.path.commonprefix([fresh, warm]))
    if not fresh.startswith(_CLOSING, at) or at < fresh.find(b"\r\n\r\n"):
        return False  # not that header, or in the first response
    return warm.startswith(fresh[at + len(_CLOSING):], at)


def warm_up(server: ServerProcess) -> int:
    """Send the warm-up traffic; the number of requests sent."""
    sent = 0
    for case in CASES:
        exchange(server, case.data)
        sent += 1
    values = {"Host": "warm.example", "Content-Length": "0", "Transfer-Encoding": "chunked",
              "Expect": "100-continue", "Connection": "keep-alive", "TE": "trailers",
              "Trailer": "X-Sum", "Upgrade": "h2c"}
    for name in FIELD_NAMES:
        for spelling in (name, name.lower(), name.upper()):
            fields = [] if name == "Host" else ["Host: warm.example"]
            fields.append(f"{spelling}: {values.get(name, 'warm value')}")
            body = b""
            if name in ("Transfer-Encoding", "Trailer"):
                fields.append("Transfer-Encoding: chunked" if name == "Trailer" else "")
                body = b"1;x=y\r\na\r\n0\r\nX-Sum: 1\r\n\r\n"
            elif name == "Expect":
                fields.append("Content-Length: 4")  # a body to defer
                body = b"warm"
            head = "".join(f + "\r\n" for f in fields if f)
            response = exchange(server, f"POST /warm HTTP/1.1\r\n{head}\r\n".encode() + body)
            assert response.startswith(b"HTTP/1.1 200 "), (name, response[:200])
            sent += 1
    return sent


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def servers(request: pytest.FixtureRequest):
    """(fresh, warm).  The fresh one always parses with the Python backend, the warm one
    with the backend of the leg: on the httptools leg the two backends must also give
    the same bytes back."""
    with contextlib.ExitStack() as stack:
        # a new worker for every connection: it has seen nothing but the request at hand
        fresh = stack.enter_context(ServerProcess("apps:request_echo", "--workers", "1",
                                                  "--max-requests", "1",
                                                  "--parser", "python"))
        warm = stack.enter_context(ServerProcess("apps:request_echo", "--workers", "1",
                                                 "--parser", request.param))
        assert warm_up(warm) >= 300
        yield fresh, warm


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(any_input, edge_requests()))
def test_fresh_and_warmed_workers_answer_alike(servers, data: bytes) -> None:
    fresh, warm = servers
    from_fresh, from_warm = exchange(fresh, data), exchange(warm, data)
    assert answered_alike(from_fresh, from_warm), (data, from_fresh, from_warm)


def test_warmed_worker_refuses_a_colon_less_field(servers) -> None:
    """The defect this file guards against, spelled out."""
    fresh, warm = servers
    data = b"GET / HTTP/1.1\r\nHost: x\r\nFoo\r\n\r\n"
    assert exchange(fresh, data).startswith(b"HTTP/1.1 400 ")
    assert exchange(warm, data).startswith(b"HTTP/1.1 400 ")


def test_answered_alike_allows_only_the_retirement() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n%s\r\nb"
    warm = first + second % b"" + first
    assert answered_alike(first + second % _CLOSING, warm)
    assert not answered_alike(first, warm)  # closed without saying so
    assert not answered_alike(first.replace(b"\r\n\r\n", b"\r\n" + _CLOSING + b"\r\n"),
                              first)  # the first response is the fresh worker's own
    assert not answered_alike(first + second % b"X-Other: 1\r\n", warm)
