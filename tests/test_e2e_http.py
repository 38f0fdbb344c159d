"""End-to-end HTTP/1.1 behaviour over real sockets, against a real server subprocess.

Normal requests go through :mod:`http.client`; malformed, pipelined and hand-timed ones
through raw sockets, with responses parsed by :class:`http.client.HTTPResponse` reading
from one shared buffered file per connection (so pipelined responses are not lost).
The applications are in ``tests/apps.py``; most run behind ``wsgiref.validate``.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import socket
import time
from datetime import datetime, timezone
from typing import Any

import apps
import pytest
from parser_backends import BACKEND_NAMES
from support import ServerProcess, assert_no_validator_complaints, raw_request, rss_mb

# -- helpers -----------------------------------------------------------------------------


def request_bytes(method: str = "GET", path: str = "/environ", version: str = "HTTP/1.1",
                  headers: list[tuple[str, str]] | tuple = (), body: bytes = b"") -> bytes:
    """One request; a Host field is added on HTTP/1.1 unless ``headers`` has one."""
    lines = [f"{method} {path} {version}"]
    if version == "HTTP/1.1" and not any(k.lower() == "host" for k, _ in headers):
        lines.append("Host: test.example")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _KeepOpen:
    """The connection's buffered file, lent to one HTTPResponse without being closed."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def close(self) -> None:
        pass


class RawClient:
    """A raw socket with one buffered reader: send bytes, read responses one by one."""

    def __init__(self, server: ServerProcess, timeout: float = 5.0) -> None:
        self.sock = server.connect(timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def makefile(self, *args: Any, **kwargs: Any) -> _KeepOpen:  # for HTTPResponse
        return _KeepOpen(self.file)

    def response(self, method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
        """The next response and its whole body."""
        resp = http.client.HTTPResponse(self, method=method)  # type: ignore[arg-type]
        resp.begin()
        return resp, resp.read()

    def raw_line(self) -> bytes:
        return self.file.readline()

    def read_rest(self, timeout: float = 5.0) -> tuple[bytes, bool]:
        """What arrives until the server closes (True) or ``timeout`` passes (False)."""
        self.sock.settimeout(timeout)
        chunks = []
        try:
            while True:
                chunk = self.file.read1(65536)
                if not chunk:
                    return b"".join(chunks), True
                chunks.append(chunk)
        except TimeoutError:
            return b"".join(chunks), False
        except ConnectionResetError:
            return b"".join(chunks), True

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_conn(server: ServerProcess, timeout: float = 10.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=timeout)


def get_json(conn: http.client.HTTPConnection, path: str, **kwargs: Any) -> dict:
    conn.request("GET", path, **kwargs)
    resp = conn.getresponse()
    assert resp.status == 200
    return json.loads(resp.read())


# -- servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def parser(request: pytest.FixtureRequest) -> str:
    """The --parser of the module's servers: every test runs against both backends."""
    return request.param


@pytest.fixture(scope="module")
def server(parser: str):
    with ServerProcess("apps:combined", "--access-log", "-", "--parser", parser) as s:
        yield s
    assert_no_validator_complaints(s)


@pytest.fixture(scope="module")
def strict(parser: str):
    """Small limits and short timeouts, and no Server header."""
    with ServerProcess("apps:combined", "--parser", parser,
                       "--limit-request-line", "256", "--limit-request-fields", "10",
                       "--limit-request-field-size", "200", "--limit-request-head", "1024",
                       "--max-body-size", "1000",
                       "--header-timeout", "1", "--keep-alive", "1", "--body-timeout", "1",
                       # no minimum body rate: test_slow_clients.py covers it
                       "--body-min-rate", "0", "--server-header", "") as s:
        yield s
    assert_no_validator_complaints(s)


# -- malformed requests --------------------------------------------------------------------

FOLLOW_UP = request_bytes("GET", "/environ?smuggled=1")

MALFORMED = {
    "cl-and-te-smuggling": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te-and-cl-smuggling": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400),
    "differing-content-lengths": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
        b"abcd", 400),
    "negative-content-length": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "bad-chunk-size": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n"
        b"0\r\n\r\n", 400),
    "chunk-without-crlf": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX"
        b"0\r\n\r\n", 400),
    "chunked-not-last": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
    "te-on-http-1.0": (
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bare-lf-in-head": (b"GET /environ HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    "obs-fold": (b"GET /environ HTTP/1.1\r\nHost: x\r\nX-A: b\r\n  folded\r\n\r\n", 400),
    "space-before-colon": (b"GET /environ HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    "no-host-on-1.1": (b"GET /environ HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    "two-hosts": (b"GET /environ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "garbage-request-line": (b"HELLO\r\n\r\n", 400),
    "unknown-transfer-coding": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"0\r\n\r\n", 501),
    "http-2.0": (b"GET /environ HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "http-3.1": (b"GET /environ HTTP/3.1\r\nHost: x\r\n\r\n", 505),
    "unknown-expectation": (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\na", 417),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_gets_one_error_and_close(server: ServerProcess, name: str) -> None:
    data, status = MALFORMED[name]
    with RawClient(server) as c:
        c.send(data + FOLLOW_UP)  # a valid request behind: it must never be answered
        resp, body = c.response()
        assert resp.status == status, body
        assert resp.getheader("Connection", "").lower() == "close"
        rest, closed = c.read_rest()
        assert closed, "the connection stayed open after a protocol error"
        assert b"HTTP/1." not in rest, f"a second response came back: {rest[:200]!r}"


def test_smuggled_request_after_te_cl_is_not_served(server: ServerProcess) -> None:
    smuggled = request_bytes("GET", "/environ?SMUGGLED")
    data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % 0) + smuggled
    with RawClient(server) as c:
        c.send(data)
        resp, _ = c.response()
        rest, closed = c.read_rest()
    assert resp.status == 400 and closed
    assert rest == b""
    time.sleep(0.2)
    assert "SMUGGLED" not in server.stdout  # the access log never saw it


@pytest.mark.parametrize("data, status", [
    pytest.param(request_bytes("GET", "/environ?" + "q" * 400), 414, id="uri-too-long"),
    pytest.param(request_bytes(headers=[(f"X-F{i}", "v") for i in range(20)]), 431,
                 id="too-many-fields"),
    pytest.param(request_bytes(headers=[("X-Big", "v" * 400)]), 431, id="field-too-large"),
    pytest.param(request_bytes(headers=[(f"X-H{i}", "v" * 150) for i in range(9)]), 431,
                 id="head-too-large"),
    pytest.param(request_bytes("POST", "/echo", headers=[("Content-Length", "5000")]), 413,
                 id="body-too-large"),
    pytest.param(request_bytes("POST", "/echo", headers=[("Content-Length", "300000")],
                               body=b"x" * 300_000), 413, id="body-too-large-and-sent"),
    pytest.param(request_bytes("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                 + b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n", 413,
                 id="chunked-body-too-large"),
])
def test_limits(strict: ServerProcess, data: bytes, status: int) -> None:
    with RawClient(strict) as c:
        c.send(data)
        resp, _ = c.response()
        assert resp.status == status
        _, closed = c.read_rest()
        assert closed


def _line_of(length: int) -> str:
    """A request target making the request line exactly ``length`` bytes long."""
    fixed = len("GET /environ? HTTP/1.1")
    return "/environ?" + "q" * (length - fixed)


@pytest.mark.parametrize("data, status", [
    pytest.param(request_bytes("GET", _line_of(256)), 200, id="line-at-limit"),
    pytest.param(request_bytes("GET", _line_of(257)), 414, id="line-over-limit"),
    pytest.param(request_bytes(headers=[(f"X-F{i}", "v") for i in range(9)]), 200,
                 id="fields-at-limit"),  # with Host: 10
    pytest.param(request_bytes(headers=[(f"X-F{i}", "v") for i in range(10)]), 431,
                 id="fields-over-limit"),
    pytest.param(request_bytes(headers=[("X-Big", "v" * (200 - 7))]), 200,
                 id="field-at-limit"),
    pytest.param(request_bytes(headers=[("X-Big", "v" * (201 - 7))]), 431,
                 id="field-over-limit"),
])
def test_limit_boundaries(strict: ServerProcess, data: bytes, status: int) -> None:
    with RawClient(strict) as c:
        c.send(data)
        resp, _ = c.response()
    assert resp.status == status


def test_within_limits_is_served(strict: ServerProcess) -> None:
    with RawClient(strict) as c:
        c.send(request_bytes("POST", "/echo", headers=[("Content-Length", "1000")],
                             body=b"b" * 1000))
        resp, body = c.response()
    assert resp.status == 200 and body == b"b" * 1000


# -- keep-alive and pipelining --------------------------------------------------------------


def test_keep_alive_http11_reuses_the_connection(server: ServerProcess) -> None:
    conn = http_conn(server)
    try:
        first = get_json(conn, "/environ?n=1")
        sock = conn.sock
        second = get_json(conn, "/environ?n=2")
        assert conn.sock is sock
        assert first["REMOTE_PORT"] == second["REMOTE_PORT"]
        assert second["QUERY_STRING"] == "n=2"
    finally:
        conn.close()


def test_keep_alive_http10(server: ServerProcess) -> None:
    with RawClient(server) as c:
        ports = []
        for i in range(3):
            c.send(request_bytes("GET", f"/environ?i={i}", "HTTP/1.0",
                                 [("Connection", "keep-alive")]))
            resp, body = c.response()
            assert resp.status == 200
            assert resp.getheader("Connection", "").lower() == "keep-alive"
            environ = json.loads(body)
            assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
            assert environ["QUERY_STRING"] == f"i={i}"
            ports.append(environ["REMOTE_PORT"])
        assert len(set(ports)) == 1


def test_http10_without_keep_alive_closes(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("GET", "/environ", "HTTP/1.0"))
        resp, _ = c.response()
        assert resp.status == 200
        assert resp.getheader("Connection", "").lower() != "keep-alive"
        rest, closed = c.read_rest()
        assert closed and rest == b""


def test_connection_close_on_http11_closes(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes(headers=[("Connection", "close")]) + FOLLOW_UP)
        resp, _ = c.response()
        assert resp.getheader("Connection", "").lower() == "close"
        rest, closed = c.read_rest()
        assert closed and b"HTTP/1." not in rest


def test_pipelined_requests_answered_in_order(server: ServerProcess) -> None:
    chunked_body = b"5\r\nhello\r\n0\r\n\r\n"
    data = (request_bytes("GET", "/environ?first")
            + request_bytes("POST", "/echo", headers=[("Content-Length", "6")], body=b"second")
            + request_bytes("POST", "/echo", headers=[("Transfer-Encoding", "chunked")],
                            body=chunked_body)
            + request_bytes("GET", "/stream?count=4&size=3"))
    with RawClient(server) as c:
        c.send(data)  # one send: all four requests arrive together
        r1, b1 = c.response()
        r2, b2 = c.response()
        r3, b3 = c.response()
        r4, b4 = c.response()
        c.send(request_bytes("GET", "/environ?after"))
        r5, b5 = c.response()
    assert json.loads(b1)["QUERY_STRING"] == "first"
    assert b2 == b"second"
    assert b3 == b"hello"
    assert r4.getheader("Transfer-Encoding") == "chunked" and b4 == b"\x00\x01\x02" * 4
    assert json.loads(b5)["QUERY_STRING"] == "after"
    assert [r.status for r in (r1, r2, r3, r4, r5)] == [200] * 5


def test_pipelined_with_half_close_still_answered(server: ServerProcess) -> None:
    """Three requests then FIN: small, immediate answers still all come back."""
    with RawClient(server) as c:
        c.send(b"".join(request_bytes("GET", f"/environ?p={i}") for i in range(3)))
        c.sock.shutdown(socket.SHUT_WR)
        queries = [json.loads(c.response()[1])["QUERY_STRING"] for _ in range(3)]
    assert queries == ["p=0", "p=1", "p=2"]


def test_pipelined_responses_respect_back_pressure(server: ServerProcess) -> None:
    """64 pipelined requests for 1 MiB each, not read for a while: the server must not
    queue all 64 MiB of answers (it stops reading requests it cannot send answers to)."""
    n, count = 1 << 20, 64
    with RawClient(server, timeout=20) as c:
        c.send(request_bytes("GET", f"/raw/blob?n={n}"))  # warm up: the body is cached
        c.response()
        baseline = rss_mb(server.worker_pid)
        c.send(request_bytes("GET", f"/raw/blob?n={n}") * count)
        time.sleep(2)
        grown = rss_mb(server.worker_pid) - baseline
        expected = apps.pattern(n)
        for _ in range(count):
            resp, body = c.response()
            assert resp.status == 200 and body == expected
    assert grown < 40, f"RSS grew by {grown:.0f} MB for pipelined answers nobody read"


def test_app_connection_close_is_honoured(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("GET", "/raw/app-close") + FOLLOW_UP)
        resp, body = c.response()
        rest, closed = c.read_rest()
    assert body == b"closed"
    assert resp.getheader("Connection", "").lower() == "close"
    assert closed and b"HTTP/1." not in rest


# -- request bodies ----------------------------------------------------------------------


def test_chunked_body_with_extension_and_trailer(server: ServerProcess) -> None:
    body = (b"5;name=value\r\nhello\r\n"
            b"6;quoted=\"a b\";flag\r\n world\r\n"
            b"0;last=1\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n")
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/echo", headers=[
            ("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")], body=body))
        resp, echoed = c.response()
        assert resp.status == 200
        assert echoed == b"hello world"
        assert resp.getheader("X-Content-Length") in ("11", "")
        assert resp.getheader("X-Content-Type") == "text/plain"
        c.send(request_bytes("GET", "/environ?next"))  # framing intact afterwards
        resp, body2 = c.response()
        assert json.loads(body2)["QUERY_STRING"] == "next"


def test_empty_line_before_the_next_request_is_ignored(server: ServerProcess) -> None:
    """RFC 9112 2.2: a CRLF after a body (old clients send one) is not an error."""
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/echo", headers=[("Content-Length", "3")], body=b"abc")
               + b"\r\n" + request_bytes("GET", "/environ?after-crlf"))
        resp1, body1 = c.response()
        resp2, body2 = c.response()
    assert body1 == b"abc"
    assert resp2.status == 200 and json.loads(body2)["QUERY_STRING"] == "after-crlf"


@pytest.mark.parametrize("size", [10, 300_000])
def test_unread_body_then_next_request(server: ServerProcess, size: int) -> None:
    conn = http_conn(server)
    try:
        conn.request("POST", "/ignore-body", body=b"u" * size)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"ignored the body\n"
        environ = get_json(conn, "/environ?after-unread")
        assert environ["QUERY_STRING"] == "after-unread"
    finally:
        conn.close()


def test_unread_chunked_body_then_next_request(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/ignore-body", headers=[("Transfer-Encoding", "chunked")],
                             body=b"4\r\nabcd\r\n0\r\n\r\n")
               + request_bytes("GET", "/environ?second"))
        resp1, _ = c.response()
        resp2, body2 = c.response()
    assert resp1.status == 200
    assert json.loads(body2)["QUERY_STRING"] == "second"


# -- Expect: 100-continue ------------------------------------------------------------------


def test_expect_100_continue_when_app_reads(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/expect-read", headers=[
            ("Content-Length", "11"), ("Expect", "100-continue")]))
        c.sock.settimeout(5)
        assert c.raw_line() == b"HTTP/1.1 100 Continue\r\n"
        assert c.raw_line() == b"\r\n"
        c.send(b"hello there")
        resp, body = c.response()
        assert resp.status == 200
        assert json.loads(body) == {"received": "hello there"}
        c.send(request_bytes("GET", "/environ?after-100"))  # still usable
        resp, body = c.response()
        assert json.loads(body)["QUERY_STRING"] == "after-100"


def test_expect_100_continue_body_sent_early(server: ServerProcess) -> None:
    """A client that doesn't wait for 100 still gets its answer."""
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/expect-read", headers=[
            ("Content-Length", "5"), ("Expect", "100-continue")], body=b"early"))
        resp, body = c.response()  # http.client skips the 100 if one comes
        assert resp.status == 200
        assert json.loads(body) == {"received": "early"}


def test_expect_100_continue_rejected_without_reading(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/expect-reject", headers=[
            ("Content-Length", "100000"), ("Expect", "100-continue")]))
        c.sock.settimeout(5)
        status_line = c.raw_line()
        assert status_line.startswith(b"HTTP/1.1 401 "), status_line
        rest, closed = c.read_rest()
    assert b"100 Continue" not in status_line + rest
    assert b"authenticate first" in rest
    assert closed, "the connection stayed open with an unread body announced"


def test_expect_100_continue_rejection_announces_the_close(server: ServerProcess) -> None:
    """RFC 9110 10.1.1: a final answer before the content SHOULD say whether the
    connection closes; this server closes it, so the response must say so."""
    with RawClient(server) as c:
        c.send(request_bytes("POST", "/expect-reject", headers=[
            ("Content-Length", "100000"), ("Expect", "100-continue")]))
        resp, _ = c.response()
        _, closed = c.read_rest()
    assert resp.status == 401 and closed
    assert resp.getheader("Connection", "").lower() == "close"


def test_expect_100_continue_body_over_the_limit(strict: ServerProcess) -> None:
    with RawClient(strict) as c:  # a declared length over the limit: 413, no 100
        c.send(request_bytes("POST", "/expect-read", headers=[
            ("Content-Length", "5000"), ("Expect", "100-continue")]))
        data, closed = c.read_rest()
    assert data.startswith(b"HTTP/1.1 413 ") and closed
    with RawClient(strict) as c:  # chunked: the limit is found while reading
        c.send(request_bytes("POST", "/expect-read", headers=[
            ("Transfer-Encoding", "chunked"), ("Expect", "100-continue")]))
        c.sock.settimeout(5)
        assert c.raw_line() == b"HTTP/1.1 100 Continue\r\n"
        assert c.raw_line() == b"\r\n"
        c.send(b"800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n")
        resp, _ = c.response()
        _, closed = c.read_rest()
    assert resp.status == 413 and closed


def test_waiting_for_a_100_continue_body_does_not_stall_others(server: ServerProcess) -> None:
    """A client that asked for 100 Continue and then sends nothing holds only its own
    connection: others are still served (the server's --body-timeout is 30 s here)."""
    with RawClient(server) as stalled:
        stalled.send(request_bytes("POST", "/expect-read", headers=[
            ("Content-Length", "10"), ("Expect", "100-continue")]))
        stalled.sock.settimeout(5)
        assert stalled.raw_line() == b"HTTP/1.1 100 Continue\r\n"
        conn = http_conn(server, timeout=3)
        try:
            start = time.monotonic()
            try:
                environ = get_json(conn, "/environ?while-stalled")
            except TimeoutError:
                environ = None
            waited = time.monotonic() - start
        finally:
            conn.close()
    assert environ is not None, (
        f"another client got no answer in {waited:.1f} s while one connection was "
        f"waiting for its 100-continue body")
    assert environ["QUERY_STRING"] == "while-stalled"


def test_100_continue_after_a_pipelined_response_is_not_mixed_in(server: ServerProcess) -> None:
    """An interim 100 must not overtake the previous response's bytes still queued."""
    n = 16 << 20  # more than the socket buffers hold
    with RawClient(server, timeout=2) as c:
        c.send(request_bytes("GET", f"/raw/blob?n={n}")
               + request_bytes("POST", "/expect-read", headers=[
                   ("Content-Length", "5"), ("Expect", "100-continue")]))
        time.sleep(0.5)  # let the first response back up
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += c.raw_line()
        assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: %d\r\n" % n in head
        body = b""
        try:
            while len(body) < n:
                chunk = c.file.read1(n - len(body))
                if not chunk:
                    break
                body += chunk
        except TimeoutError:
            pass
        at = body.find(b"HTTP/1.1 100 Continue")
        assert at < 0, f"the 100 Continue was sent inside the previous body, at byte {at}"
        assert len(body) == n, (f"only {len(body)} of {n} bytes of the first response came; "
                                f"the rest stayed queued")
        assert body == apps.pattern(n)
        assert c.raw_line() == b"HTTP/1.1 100 Continue\r\n"
        assert c.raw_line() == b"\r\n"
        c.send(b"abcde")
        resp, data = c.response()
    assert resp.status == 200 and json.loads(data) == {"received": "abcde"}


# -- response framing --------------------------------------------------------------------


def test_head_has_get_length_and_no_body(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("GET", "/fixed?n=1234") + request_bytes("HEAD", "/fixed?n=1234")
               + request_bytes("HEAD", "/stream?count=3") + request_bytes("GET", "/environ?z"))
        get, get_body = c.response()
        head, head_body = c.response("HEAD")
        head2, _ = c.response("HEAD")
        last, last_body = c.response()  # would be garbage if a HEAD leaked a body
    assert get.getheader("Content-Length") == "1234" and len(get_body) == 1234
    assert head.status == 200 and head_body == b""
    assert head.getheader("Content-Length") == "1234"
    assert head2.status == 200 and head2.getheader("Content-Length") is None
    assert json.loads(last_body)["QUERY_STRING"] == "z"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(server: ServerProcess, code: int) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("GET", f"/status?code={code}") + request_bytes("GET", "/environ?y"))
        c.sock.settimeout(5)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += c.raw_line()
        nxt = c.raw_line()  # the body must not be here: the next status line is
    assert head.startswith(b"HTTP/1.1 %d " % code)
    assert b"transfer-encoding" not in head.lower()
    if code == 204:
        assert b"content-length" not in head.lower()
    assert nxt.startswith(b"HTTP/1.1 200 "), nxt


def test_no_content_length_is_chunked_on_http11(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("GET", "/stream?count=3&size=5"))
        c.sock.settimeout(5)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += c.raw_line()
        chunks = []
        while True:
            size = int(c.raw_line().split(b";")[0], 16)
            data = c.file.read(size)
            assert c.raw_line() == b"\r\n"
            if size == 0:
                break
            chunks.append(data)
    assert b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
    assert b"content-length" not in head.lower()
    assert chunks == [b"\x00\x01\x02\x03\x04"] * 3


def test_no_content_length_is_close_delimited_on_http10(server: ServerProcess) -> None:
    with RawClient(server) as c:
        c.send(request_bytes("GET", "/stream?count=3&size=5", "HTTP/1.0",
                             [("Connection", "keep-alive")]))
        data, closed = c.read_rest()
    head, _, body = data.partition(b"\r\n\r\n")
    assert closed
    assert b"transfer-encoding" not in head.lower() and b"content-length" not in head.lower()
    assert b"\r\nconnection: close" in head.lower()
    assert body == b"\x00\x01\x02\x03\x04" * 3


def _check_date(value: str | None) -> None:
    assert value is not None, "no Date header"
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", value)
    when = email.utils.parsedate_to_datetime(value)
    assert abs((when - datetime.now(timezone.utc)).total_seconds()) < 300


def test_date_and_server_headers(server: ServerProcess) -> None:
    conn = http_conn(server)
    try:
        conn.request("GET", "/environ")
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    _check_date(resp.getheader("Date"))
    assert resp.getheader("Server") == "wsgiloop"
    assert len(resp.headers.get_all("Date")) == 1


def test_server_header_can_be_removed(strict: ServerProcess) -> None:
    conn = http_conn(strict)
    try:
        conn.request("GET", "/environ")
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert resp.getheader("Server") is None
    _check_date(resp.getheader("Date"))


def test_date_on_error_responses(server: ServerProcess) -> None:
    """RFC 9110 6.6.1: an origin server with a clock MUST send Date in 4xx responses."""
    with RawClient(server) as c:
        c.send(b"GET /environ HTTP/1.1\r\n\r\n")  # no Host: 400
        resp, _ = c.response()
    assert resp.status == 400
    _check_date(resp.getheader("Date"))


def test_access_log_line(server: ServerProcess) -> None:
    conn = http_conn(server)
    try:
        conn.request("GET", "/environ?access-log-probe", headers={"User-Agent": "probe/1.0"})
        conn.getresponse().read()
    finally:
        conn.close()
    deadline = time.monotonic() + 5
    pattern = r'"GET /environ\?access-log-probe HTTP/1.1" 200 \d+ "-" "probe/1.0"'
    while not re.search(pattern, server.stdout) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert re.search(pattern, server.stdout), server.stdout


# -- timeouts (strict server: 1 s each) ----------------------------------------------------


def test_trickled_head_is_cut_off(strict: ServerProcess) -> None:
    data = request_bytes("GET", "/environ", headers=[("X-Pad", "p" * 60)])
    with RawClient(strict) as c:
        start = time.monotonic()
        received = b""
        closed = False
        for byte in data[:-2]:  # never complete the head
            try:
                c.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            c.sock.settimeout(0.05)
            try:
                chunk = c.sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
            received += chunk
            if not chunk:
                closed = True
                break
            if time.monotonic() - start > 8:
                break
        if not closed:
            rest, closed = c.read_rest(5)
            received += rest
        elapsed = time.monotonic() - start
    assert closed, "a trickling client kept the connection past --header-timeout"
    assert received == b"" or received.startswith(b"HTTP/1.1 408 "), received[:100]
    assert 0.5 < elapsed < 8


def test_silent_connection_is_closed(strict: ServerProcess) -> None:
    with RawClient(strict) as c:
        start = time.monotonic()
        data, closed = c.read_rest(6)
    assert closed and (data == b"" or data.startswith(b"HTTP/1.1 408 "))
    assert 0.5 < time.monotonic() - start < 6


def test_idle_keep_alive_connection_is_closed(strict: ServerProcess) -> None:
    with RawClient(strict) as c:
        c.send(request_bytes("GET", "/environ"))
        resp, _ = c.response()
        assert resp.status == 200 and resp.getheader("Connection") is None
        start = time.monotonic()
        rest, closed = c.read_rest(6)
    assert closed and rest == b""
    assert 0.5 < time.monotonic() - start < 6


def test_keep_alive_timeout_does_not_cut_a_response_being_sent(strict: ServerProcess) -> None:
    """The idle clock starts when the response has left, not when it was queued: a client
    that starts reading a large answer after --keep-alive (1 s) still gets all of it."""
    n = 16 << 20  # more than the socket buffers hold
    conn = http_conn(strict)
    try:
        conn.request("GET", f"/raw/blob?n={n}")
        time.sleep(1.6)
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == str(n)
        try:
            body = resp.read()
        except http.client.IncompleteRead as exc:
            pytest.fail(f"the response was cut after {len(exc.partial)} of {n} bytes")
    finally:
        conn.close()
    assert body == apps.pattern(n)


def test_stalled_body_gets_408(strict: ServerProcess) -> None:
    with RawClient(strict) as c:
        c.send(request_bytes("POST", "/echo", headers=[("Content-Length", "100")],
                             body=b"only part of it"))
        start = time.monotonic()
        c.sock.settimeout(6)
        resp, _ = c.response()
        elapsed = time.monotonic() - start
        rest, closed = c.read_rest()
    assert resp.status == 408
    assert closed and rest == b""
    assert 0.5 < elapsed < 6


def test_slow_but_steady_body_is_not_cut(strict: ServerProcess) -> None:
    """--body-timeout counts time without progress, not the whole body."""
    with RawClient(strict) as c:
        c.send(request_bytes("POST", "/echo", headers=[("Content-Length", "8")]))
        for piece in (b"ab", b"cd", b"ef", b"gh"):
            time.sleep(0.4)
            c.send(piece)
        resp, body = c.response()
    assert resp.status == 200 and body == b"abcdefgh"


def test_access_log_escapes_control_characters_of_decoded_atoms() -> None:
    """U and {key}e are percent-decoded (as in gunicorn): a CR LF sent as %0D%0A is
    written escaped, so it cannot start a forged line in the log."""
    with ServerProcess("apps:combined", "--access-log", "-",
                       "--access-log-format", "LINE %(U)s %({PATH_INFO}e)s END") as s:
        with socket.create_connection((s.host, s.port), timeout=5) as sock:
            raw_request(sock, b"GET /environ%0D%0A127.0.0.1%20-%20-%20forged HTTP/1.1\r\n"
                              b"Host: x\r\nConnection: close\r\n\r\n")
        path = r"/environ\x0d\x0a127.0.0.1 - - forged"
        expected = f"LINE {path} {path} END"
        deadline = time.monotonic() + 5
        while expected not in s.stdout and time.monotonic() < deadline:
            time.sleep(0.02)
        assert expected in s.stdout.splitlines(), s.stdout
