"""Parser hardening (issue 9) checked over real sockets against a one-worker server.

Every refused request must get one error response and a closed connection, and a
valid request sent behind it on the same connection must never be answered.  The
colon-less field test first sends a valid request carrying the field, so the worker has
seen the name before (the parser once cached checked names and then let the colon-less
line through).
"""

from __future__ import annotations

import json
import re

import pytest
from parser_backends import BACKEND_NAMES
from support import ServerProcess

FOLLOW_UP = b"GET /environ?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def server(request: pytest.FixtureRequest):
    """One server per parser backend: every test runs against both."""
    with ServerProcess("apps:combined", "--workers", "1", "--parser", request.param) as s:
        yield s


def exchange(server: ServerProcess, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; everything received and whether the server
    closed the connection (False: still open when ``timeout`` passed)."""
    with server.connect(timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return b"".join(chunks), True
                chunks.append(chunk)
        except ConnectionResetError:
            return b"".join(chunks), True
        except TimeoutError:
            return b"".join(chunks), False


def statuses(received: bytes) -> list[int]:
    return [int(s) for s in re.findall(rb"(?m)^HTTP/1\.1 (\d{3}) ", received)]


def assert_refused(server: ServerProcess, data: bytes, status: int = 400) -> None:
    received, closed = exchange(server, data + FOLLOW_UP)
    assert statuses(received) == [status], received[:300]
    assert closed, "the connection stayed open after a protocol error"
    assert b"smuggled" not in received


def served_environ(server: ServerProcess, data: bytes) -> dict:
    received, closed = exchange(server, data)
    assert statuses(received) == [200], received[:300]
    assert closed  # the requests say Connection: close
    return json.loads(received.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("name", ["Foo", "X-Seen-Before", "Accept"])
def test_colon_less_field_refused_after_a_valid_one(server: ServerProcess, name: str) -> None:
    assert server.worker_pid  # waits for the worker's "serving" line (it may lag the start)
    assert len(server.worker_pids()) == 1
    environ = served_environ(server, (
        f"GET /environ HTTP/1.1\r\nHost: x\r\n{name}: 1\r\nConnection: close\r\n\r\n"
    ).encode())
    assert environ["HTTP_" + name.upper().replace("-", "_")] == "1"
    for _ in range(2):
        assert_refused(server, f"GET /environ HTTP/1.1\r\nHost: x\r\n{name}\r\n\r\n".encode())


def test_bare_host_line_refused_after_valid_hosts(server: ServerProcess) -> None:
    for host in ("x", "", "example.com:80"):
        environ = served_environ(
            server, f"GET /environ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            .encode())
        assert environ["HTTP_HOST"] == host
    assert_refused(server, b"GET /environ HTTP/1.1\r\nHost\r\n\r\n")


def chunked(body: bytes, *fields: bytes) -> bytes:
    return (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body)


@pytest.mark.parametrize("body", [
    pytest.param(b"5 \r\nhello\r\n0\r\n\r\n", id="size-space"),
    pytest.param(b"5\t\r\nhello\r\n0\r\n\r\n", id="size-tab"),
    pytest.param(b"5\r\nhello\r\n0 \r\n\r\n", id="last-chunk-space"),
    pytest.param(b"5;\r\nhello\r\n0\r\n\r\n", id="ext-empty-name"),
    pytest.param(b"5;a=\r\nhello\r\n0\r\n\r\n", id="ext-empty-value"),
    pytest.param(b"5;a b\r\nhello\r\n0\r\n\r\n", id="ext-name-space"),
    pytest.param(b'5;a="b\r\nhello\r\n0\r\n\r\n', id="ext-unterminated-quote"),
    pytest.param(b"5;a=b \r\nhello\r\n0\r\n\r\n", id="ext-trailing-space"),
])
def test_chunk_line_grammar(server: ServerProcess, body: bytes) -> None:
    assert_refused(server, chunked(body))


def test_chunk_extensions_with_bws_are_served(server: ServerProcess) -> None:
    received, _ = exchange(server, chunked(
        b'5 ;a = b ; c="d\\"e"\r\nhello\r\n0;z\r\n\r\n', b"Connection: close"))
    assert statuses(received) == [200]
    assert received.endswith(b"\r\n\r\nhello")


@pytest.mark.parametrize("fields", [
    pytest.param([b"Content-Length: 5, 5"], id="cl-list"),
    pytest.param([b"Content-Length: 5", b"Content-Length: 5"], id="cl-twice-equal"),
    pytest.param([b"Content-Length: 5", b"Content-Type: text/plain",
                  b"content-type: text/html"], id="content-type-twice"),
    pytest.param([b"Content-Length: 5", b"Authorization: Basic eA==",
                  b"Authorization: Basic eQ=="], id="authorization-twice"),
    pytest.param([b"Content-Length: 5", b"Proxy-Authorization: a",
                  b"Proxy-Authorization: b"], id="proxy-authorization-twice"),
])
def test_singleton_fields(server: ServerProcess, fields: list[bytes]) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + b"".join(f + b"\r\n" for f in fields)
    assert_refused(server, data + b"\r\nhello")


@pytest.mark.parametrize("trailer", [b"Content-Length: 5", b"Host: evil.example",
                                     b"Transfer-Encoding: chunked", b"TE: trailers",
                                     b"Authorization: Basic eA=="])
def test_forbidden_trailer_fields(server: ServerProcess, trailer: bytes) -> None:
    assert_refused(server, chunked(b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n"))


def test_allowed_trailer_is_discarded(server: ServerProcess) -> None:
    received, _ = exchange(server, chunked(b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
                                           b"Connection: close"))
    assert statuses(received) == [200]
    assert received.endswith(b"\r\n\r\nhello")
