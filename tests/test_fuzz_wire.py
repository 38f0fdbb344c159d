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
(status lines, fields but Date, bodies) must be the same bytes.

Each exchange sends the bytes, half-closes, and reads until the server closes, so no
test waits for a timeout.
"""

from __future__ import annotations

import contextlib
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
                # no body: a deferred body is not read after a half-close (the server
                # answers nothing then, fresh or warm)
                fields.append("Content-Length: 0")
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
@given(st.one_of(any_input, edge_requests())
       .filter(lambda data: b"100-continue" not in data.lower()))
def test_fresh_and_warmed_workers_answer_alike(servers, data: bytes) -> None:
    """(Without Expect: 100-continue: a deferred body and a half-close race in the
    server, fresh or warm, and the answer is a 200 or nothing.)"""
    fresh, warm = servers
    assert exchange(fresh, data) == exchange(warm, data), data


def test_warmed_worker_refuses_a_colon_less_field(servers) -> None:
    """The defect this file guards against, spelled out."""
    fresh, warm = servers
    data = b"GET / HTTP/1.1\r\nHost: x\r\nFoo\r\n\r\n"
    assert exchange(fresh, data).startswith(b"HTTP/1.1 400 ")
    assert exchange(warm, data).startswith(b"HTTP/1.1 400 ")
