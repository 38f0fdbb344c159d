"""End-to-end PEP 3333 behaviour over real sockets, against a real server subprocess.

The server runs ``apps:combined`` (``tests/apps.py``) with ``--root-path /app``, so every
path here starts with ``/app``; ``/app/raw/...`` reaches the application without
``wsgiref.validate`` in between.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from apps import pattern
from support import ServerProcess, assert_no_validator_complaints, raw_request, rss_mb

import wsgiloop

ROOT = "/app"

# -- helpers -----------------------------------------------------------------------------


def conn_to(server: ServerProcess, timeout: float = 10.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=timeout)


def fetch(server: ServerProcess, method: str, path: str, body: Any = None,
          headers: dict | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a new connection; a ``Transfer-Encoding`` header means chunked."""
    conn = conn_to(server)
    try:
        conn.request(method, path, body=body, headers=headers or {},
                     encode_chunked="Transfer-Encoding" in (headers or {}))
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def environ_of(server: ServerProcess, path: str = ROOT + "/environ", **kwargs: Any) -> dict:
    resp, body = fetch(server, kwargs.pop("method", "GET"), path, **kwargs)
    assert resp.status == 200, body
    return json.loads(body)


def raw_exchange(server: ServerProcess, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and read until the server closes (or ``timeout``)."""
    with server.connect(timeout) as sock:
        return raw_request(sock, data, timeout)


def raw_environ(server: ServerProcess, request: bytes) -> dict:
    reply = raw_exchange(server, request)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), reply[:300]
    return json.loads(body)


def closes(server: ServerProcess) -> list[str]:
    resp, body = fetch(server, "GET", ROOT + "/closes")
    return json.loads(body)


def wait_for_close(server: ServerProcess, tag: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tag in closes(server):
            return
        time.sleep(0.05)
    raise AssertionError(f"close() of {tag!r} was never called; log:\n{server.log[-3000:]}")


# -- servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with ServerProcess("apps:combined", "--root-path", ROOT,
                       "--spool-threshold", "65536") as s:
        yield s
    assert_no_validator_complaints(s)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = os.urandom(1 << 20)
    path = tmp_path_factory.mktemp("files") / "one-megabyte.bin"
    path.write_bytes(data)
    return path, data


# -- the environ -------------------------------------------------------------------------


def test_environ_basics(server: ServerProcess) -> None:
    conn = conn_to(server)
    try:
        conn.request("GET", ROOT + "/environ?x=1&y=%20z&q=a+b")
        local_port = conn.sock.getsockname()[1]
        resp = conn.getresponse()
        env = json.loads(resp.read())
    finally:
        conn.close()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ROOT
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "x=1&y=%20z&q=a+b"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_SOFTWARE"] == f"wsgiloop/{wsgiloop.__version__}"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)
    assert env["HTTP_HOST"] == f"{server.host}:{server.port}"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    # 100-continue requests run on worker threads, so the app may run on two threads.
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["CONTENT_TYPE"] == ""
    assert env.get("CONTENT_LENGTH", "") == ""
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env
    for key in ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper"):
        assert key in env


@pytest.mark.parametrize("target, script_name, path_info", [
    ("/app/caf%C3%A9", ROOT, "/caf\xc3\xa9"),           # UTF-8 bytes, as latin-1
    ("/app/caf%e9", ROOT, "/caf\xe9"),                   # a lone latin-1 byte
    ("/app/a%2Fb", ROOT, "/a/b"),                        # %2F is decoded too
    ("/app/a%20b+c", ROOT, "/a b+c"),                    # '+' is not a space in a path
    ("/app/x%3Fy", ROOT, "/x?y"),
    ("/app", ROOT, ""),                                  # the root itself
    ("/app/", ROOT, "/"),
    ("/application/x", ROOT, "/application/x"),          # not under the root
    ("/other", ROOT, "/other"),
])
def test_path_info(server: ServerProcess, target: str, script_name: str,
                   path_info: str) -> None:
    env = environ_of(server, target)
    assert env["SCRIPT_NAME"] == script_name
    assert env["PATH_INFO"] == path_info


def test_query_string_is_raw(server: ServerProcess) -> None:
    env = environ_of(server, ROOT + "/environ?a=%41%2F&b=caf%C3%A9&c=1+2&&d")
    assert env["QUERY_STRING"] == "a=%41%2F&b=caf%C3%A9&c=1+2&&d"
    env = environ_of(server, ROOT + "/environ")
    assert env["QUERY_STRING"] == ""


def test_request_headers_in_environ(server: ServerProcess) -> None:
    request = (b"POST /app/environ HTTP/1.1\r\nHost: example.test:8080\r\n"
               b"X-Multi: one\r\nX-Custom-Thing: custom\r\nX-Multi: two\r\n"
               b"Cookie: a=1\r\nCookie: b=2\r\n"
               b"X-Latin: caf\xe9\r\nContent-Type: text/plain; charset=latin-1\r\n"
               b"Content-Length: 4\r\nConnection: close\r\n\r\nbody")
    env = raw_environ(server, request)
    assert [v.strip() for v in env["HTTP_X_MULTI"].split(",")] == ["one", "two"]
    assert env["HTTP_X_CUSTOM_THING"] == "custom"
    assert env["HTTP_COOKIE"] in ("a=1; b=2", "a=1, b=2", "a=1,b=2")
    assert env["HTTP_X_LATIN"] == "caf\xe9"
    assert env["HTTP_HOST"] == "example.test:8080"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_TYPE"] == "text/plain; charset=latin-1"
    assert env["CONTENT_LENGTH"] == "4"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_absolute_form_target(server: ServerProcess) -> None:
    """RFC 9112 3.2.2: the target's authority wins over the Host field."""
    request = (b"GET http://origin.test:8080/app/environ?q=1 HTTP/1.1\r\n"
               b"Host: ignored.test\r\nConnection: close\r\n\r\n")
    env = raw_environ(server, request)
    assert env["HTTP_HOST"] == "origin.test:8080"
    assert env["SCRIPT_NAME"] == ROOT
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "q=1"


def test_http10_environ(server: ServerProcess) -> None:
    env = raw_environ(server, b"GET /app/environ HTTP/1.0\r\n\r\n")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert "HTTP_HOST" not in env


def test_nothing_leaks_between_requests_on_one_connection(server: ServerProcess) -> None:
    conn = conn_to(server)
    try:
        conn.request("POST", ROOT + "/environ?first", body=b"abc",
                     headers={"X-Only-First": "1", "Content-Type": "text/x-first"})
        first = json.loads(conn.getresponse().read())
        conn.request("GET", ROOT + "/environ?second")
        second = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert first["HTTP_X_ONLY_FIRST"] == "1" and first["CONTENT_LENGTH"] == "3"
    assert first["REMOTE_PORT"] == second["REMOTE_PORT"]
    assert "HTTP_X_ONLY_FIRST" not in second
    assert second["CONTENT_TYPE"] == "" and second.get("CONTENT_LENGTH", "") == ""
    assert second["REQUEST_METHOD"] == "GET" and second["QUERY_STRING"] == "second"


def test_empty_post_body(server: ServerProcess) -> None:
    resp, body = fetch(server, "POST", ROOT + "/echo", body=b"")
    assert resp.status == 200 and body == b""
    assert resp.getheader("X-Content-Length") in ("0", "")


def test_wsgi_errors_goes_to_the_error_log(server: ServerProcess) -> None:
    resp, _ = fetch(server, "GET", ROOT + "/errors")
    assert resp.status == 200
    server.wait_for_log("wsgi.errors marker 51f0")


# -- wsgi.input --------------------------------------------------------------------------

LINES = b"line one\nline two\r\n\nlast without newline"


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("mode, expected", [
    ("read_n", [b"line", b" one", b"\nlin", b"e tw", b"o\r\n\n", b"last", b" wit", b"hout",
                b" new", b"line", b""]),
    ("readline", [b"line one\n", b"line two\r\n", b"\n", b"last without newline", b""]),
    ("readline_size", [b"line", b" one", b"\n", b"line", b" two", b"\r\n", b"\n", b"last",
                       b" wit", b"hout", b" new", b"line", b""]),
    ("readlines", [b"line one\n", b"line two\r\n", b"\n", b"last without newline"]),
    ("iter", [b"line one\n", b"line two\r\n", b"\n", b"last without newline"]),
])
def test_input_reading(server: ServerProcess, mode: str, expected: list[bytes],
                       chunked: bool) -> None:
    body: Any = iter([LINES[:7], LINES[7:]]) if chunked else LINES
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    resp, data = fetch(server, "POST", f"{ROOT}/input?mode={mode}&n=4", body=body,
                       headers=headers)
    assert resp.status == 200, data
    assert [p.encode("latin-1") for p in json.loads(data)] == expected


def test_input_read_without_size(server: ServerProcess) -> None:
    resp, data = fetch(server, "POST", f"{ROOT}/raw/input?mode=read_all", body=LINES)
    assert json.loads(data) == [LINES.decode("latin-1")]


@pytest.mark.parametrize("mode", ["read_n", "readline", "readlines", "iter"])
def test_input_empty_body(server: ServerProcess, mode: str) -> None:
    resp, data = fetch(server, "GET", f"{ROOT}/input?mode={mode}")
    expected = {"read_n": [""], "readline": [""], "readlines": [], "iter": []}[mode]
    assert json.loads(data) == expected


def test_spooled_input_lines(server: ServerProcess) -> None:
    """A body above --spool-threshold (64 KiB here) reads the same, line by line."""
    body = b"".join(b"%06d %s\n" % (i, b"x" * (i % 50)) for i in range(5000))
    assert len(body) > 65536
    resp, data = fetch(server, "POST", f"{ROOT}/input?mode=iter", body=body)
    assert b"".join(p.encode("latin-1") for p in json.loads(data)) == body


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_large_spooled_body_intact(server: ServerProcess, chunked: bool) -> None:
    body = os.urandom(5 * 1024 * 1024 + 17)
    if chunked:
        payload: Any = (body[i:i + 300_001] for i in range(0, len(body), 300_001))
        headers = {"Transfer-Encoding": "chunked"}
    else:
        payload, headers = body, {}
    resp, data = fetch(server, "POST", f"{ROOT}/digest", body=payload, headers=headers)
    result = json.loads(data)
    assert result["length"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["content_length"] in (str(len(body)), "")


# -- responses ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["raw/file", "file"], ids=["sendfile", "iterated"])
def test_file_wrapper_with_length(server: ServerProcess, big_file, route: str) -> None:
    path, data = big_file
    conn = conn_to(server)
    try:
        conn.request("GET", f"{ROOT}/{route}?cl=1&path={quote(str(path))}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == str(len(data))
        assert len(body) == len(data)
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
        conn.request("GET", ROOT + "/environ?after-file")  # the connection is still good
        resp = conn.getresponse()
        assert json.loads(resp.read())["QUERY_STRING"] == "after-file"
    finally:
        conn.close()


def test_file_wrapper_without_length(server: ServerProcess, big_file) -> None:
    path, data = big_file
    resp, body = fetch(server, "GET", f"{ROOT}/raw/file?path={quote(str(path))}")
    assert resp.status == 200
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


def test_file_wrapper_http10_close_delimited(server: ServerProcess, big_file) -> None:
    path, data = big_file
    reply = raw_exchange(server, f"GET {ROOT}/raw/file?path={quote(str(path))} HTTP/1.0\r\n"
                                 f"\r\n".encode(), timeout=10)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("route", ["raw/file", "file"], ids=["sendfile", "iterated"])
def test_file_wrapper_from_the_current_position(server: ServerProcess, big_file,
                                                route: str) -> None:
    path, data = big_file
    skip = 300_001
    resp, body = fetch(server, "GET", f"{ROOT}/{route}?cl=1&skip={skip}&path={quote(str(path))}")
    assert resp.getheader("Content-Length") == str(len(data) - skip)
    assert len(body) == len(data) - skip
    assert body == data[skip:]


def test_file_wrapper_over_a_file_like_without_fileno(server: ServerProcess, big_file) -> None:
    path, data = big_file
    resp, body = fetch(server, "GET", f"{ROOT}/raw/file?bytesio=1&cl=1&path={quote(str(path))}")
    assert resp.getheader("Content-Length") == str(len(data))
    assert body == data


def test_file_wrapper_head(server: ServerProcess, big_file) -> None:
    path, data = big_file
    target = f"{ROOT}/raw/file?cl=1&path={quote(str(path))}"
    reply = raw_exchange(server, f"HEAD {target} HTTP/1.1\r\nHost: x\r\n\r\n"
                                 f"GET {ROOT}/environ?h HTTP/1.1\r\nHost: x\r\n"
                                 f"Connection: close\r\n\r\n".encode())
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: %d\r\n" % len(data) in head + b"\r\n"
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:100]


def test_start_response_inside_the_generator(server: ServerProcess) -> None:
    resp, body = fetch(server, "GET", ROOT + "/late")
    assert resp.status == 201 and resp.reason == "Created Late"
    assert resp.getheader("X-Late") == "yes"
    assert body == b"late start"


@pytest.mark.parametrize("query, length", [("", None), ("?cl=1", "17")])
def test_write_callable(server: ServerProcess, query: str, length: str | None) -> None:
    resp, body = fetch(server, "GET", ROOT + "/write" + query)
    assert resp.status == 200
    assert body == b"part1-part2-part3"
    assert resp.getheader("Content-Length") == length


def test_exc_info_before_the_head_replaces_the_status(server: ServerProcess) -> None:
    resp, body = fetch(server, "GET", ROOT + "/exc-info-replace")
    assert resp.status == 503 and resp.reason == "Replaced"
    assert resp.getheader("X-Replaced") == "yes"
    assert body == b"replacement body"


@pytest.mark.parametrize("route, marker", [
    ("exc-info-late", "late failure marker"),
    ("error-after-start", "error after the response started"),
])
def test_error_after_the_head_cuts_the_connection(server: ServerProcess, route: str,
                                                  marker: str) -> None:
    conn = conn_to(server)
    try:
        conn.request("GET", f"{ROOT}/{route}")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial in (b"first part", b"partial body")
    finally:
        conn.close()
    server.wait_for_log(marker)


def test_content_length_larger_than_body(server: ServerProcess) -> None:
    conn = conn_to(server)
    try:
        conn.request("GET", ROOT + "/cl-long")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == "100"
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial == b"0123456789"
    finally:
        conn.close()


def test_content_length_smaller_than_body(server: ServerProcess) -> None:
    conn = conn_to(server)
    try:
        conn.request("GET", ROOT + "/cl-short")
        resp = conn.getresponse()
        assert resp.read() == b"01234"
        conn.request("GET", ROOT + "/environ?after-short")  # nothing extra on the wire
        resp = conn.getresponse()
        assert json.loads(resp.read())["QUERY_STRING"] == "after-short"
    finally:
        conn.close()


def test_list_body_gets_a_length(server: ServerProcess) -> None:
    resp, body = fetch(server, "GET", ROOT + "/raw/list")
    assert body == b"a list body"
    assert resp.getheader("Content-Length") == str(len(body))


# -- close() -----------------------------------------------------------------------------


def test_close_called_after_a_normal_response(server: ServerProcess) -> None:
    resp, body = fetch(server, "GET", ROOT + "/tracked?tag=normal&count=3&size=4")
    assert body == b"\x00\x01\x02\x03" * 3
    wait_for_close(server, "normal")


def test_close_called_when_the_iterable_fails(server: ServerProcess) -> None:
    conn = conn_to(server)
    try:
        conn.request("GET", ROOT + "/tracked?tag=failing&count=5&size=4&fail=2")
        resp = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
    wait_for_close(server, "failing")


def test_close_called_for_head(server: ServerProcess) -> None:
    resp, body = fetch(server, "HEAD", ROOT + "/tracked?tag=head&count=3&size=4&cl=1")
    assert resp.status == 200 and body == b""
    assert resp.getheader("Content-Length") == "12"
    wait_for_close(server, "head")


def test_close_called_when_the_client_disconnects(server: ServerProcess) -> None:
    """128 MiB offered; the client reads a little and hangs up."""
    with server.connect() as sock:
        sock.sendall(f"GET {ROOT}/tracked?tag=gone&count=2048&size=65536 HTTP/1.1\r\n"
                     f"Host: x\r\n\r\n".encode())
        received = 0
        while received < 200_000:
            chunk = sock.recv(65536)
            assert chunk
            received += len(chunk)
    wait_for_close(server, "gone")


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_file_wrapper_files_are_closed(server: ServerProcess, tmp_path: Path) -> None:
    """The file behind wsgi.file_wrapper is closed (through close()) in every case:
    sent whole, HEAD, iterated, and a client that hangs up part way through."""
    big = tmp_path / "sixteen-megabytes.bin"
    with open(big, "wb") as f:
        f.truncate(16 << 20)
    target = quote(str(big))
    pid = server.worker_pid
    fetch(server, "GET", ROOT + "/environ")
    before = _open_fds(pid)
    for _ in range(3):
        for route in ("raw/file", "file"):
            with server.connect() as sock:  # hang up after a little
                sock.sendall(f"GET {ROOT}/{route}?cl=1&path={target} HTTP/1.1\r\nHost: x\r\n"
                             f"\r\n".encode())
                sock.recv(65536)
            resp, body = fetch(server, "HEAD", f"{ROOT}/{route}?cl=1&path={target}")
            assert resp.status == 200 and body == b""
        resp, body = fetch(server, "GET", f"{ROOT}/raw/file?cl=1&path={target}")
        assert len(body) == 16 << 20
    deadline = time.monotonic() + 5
    while _open_fds(pid) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_fds(pid) <= before + 2, sorted(
        os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))


# -- errors ------------------------------------------------------------------------------


def test_app_exception_gives_500_without_traceback(server: ServerProcess) -> None:
    resp, body = fetch(server, "GET", ROOT + "/raise")
    assert resp.status == 500
    assert b"Traceback" not in body and b"kaboom" not in body and b"apps.py" not in body
    server.wait_for_log(r"Traceback \(most recent call last\)")
    server.wait_for_log("RuntimeError: kaboom-7d1e secret detail")
    env = environ_of(server)  # the server carries on
    assert env["PATH_INFO"] == "/environ"


@pytest.mark.parametrize("route", ["bad-status", "bad-header-crlf", "bad-header-latin1",
                                   "bad-header-name"])
def test_invalid_response_from_app_gives_500(server: ServerProcess, route: str) -> None:
    reply = raw_exchange(server, f"GET {ROOT}/raw/{route} HTTP/1.1\r\nHost: x\r\n"
                                 f"Connection: close\r\n\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 "), reply[:300]
    assert b"X-Injected" not in reply and b"X-Bad" not in head and b"X Bad" not in head
    assert b"Traceback" not in body


# -- back-pressure, signals ------------------------------------------------------------------


def test_slow_reader_does_not_grow_memory(server: ServerProcess) -> None:
    total = 64 * 1024 * 1024
    pid = server.worker_pid
    fetch(server, "GET", ROOT + "/tracked?tag=warmup&count=64&size=65536&cl=1")
    baseline = rss_mb(pid)
    conn = conn_to(server, timeout=30)
    try:
        conn.request("GET", ROOT + "/tracked?tag=slow&count=1024&size=65536&cl=1")
        time.sleep(2)  # not reading: the server must wait, not buffer
        grown = rss_mb(pid) - baseline
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == str(total)
        h = hashlib.sha256()
        received = 0
        while True:
            block = resp.read(1 << 20)
            if not block:
                break
            h.update(block)
            received += len(block)
    finally:
        conn.close()
    assert grown < 40, f"RSS grew by {grown:.1f} MB for a client that did not read"
    assert received == total
    assert h.hexdigest() == hashlib.sha256(pattern(65536) * 1024).hexdigest()
    wait_for_close(server, "slow")


def _stop_with_requests_in_flight(sig: int) -> None:
    with ServerProcess("apps:combined", "--root-path", ROOT) as s:
        # an idle keep-alive connection: closed by the stop
        idle = conn_to(s)
        idle.request("GET", ROOT + "/environ")
        idle.getresponse().read()
        # a request whose body is half sent
        upload = s.connect(10)
        body = b"u" * 200_000
        upload.sendall(f"POST {ROOT}/digest HTTP/1.1\r\nHost: x\r\nContent-Length: "
                       f"{len(body)}\r\n\r\n".encode() + body[:100_000])
        # a large response the client has not read yet
        download = conn_to(s, timeout=20)
        download.request("GET", ROOT + "/tracked?tag=stop&count=256&size=65536&cl=1")
        time.sleep(0.3)

        s.proc.send_signal(sig)
        time.sleep(0.5)
        assert s.proc.poll() is None, "the server quit with requests in flight"
        with pytest.raises(OSError):  # no new connections
            s.connect(2).close()
        idle.sock.settimeout(5)
        assert idle.sock.recv(100) == b""  # the idle connection was closed

        upload.sendall(body[100_000:])
        upload.settimeout(10)
        reply = b""
        while b"}" not in reply:
            chunk = upload.recv(65536)
            if not chunk:
                break
            reply += chunk
        upload.close()
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
        result = json.loads(reply.partition(b"\r\n\r\n")[2])
        assert result["sha256"] == hashlib.sha256(body).hexdigest()

        resp = download.getresponse()
        data = resp.read()
        download.close()
        idle.close()
        assert len(data) == 256 * 65536

        assert s.proc.wait(10) == 0
        assert "Traceback" not in s.log


def test_sigterm_finishes_requests_in_flight() -> None:
    _stop_with_requests_in_flight(signal.SIGTERM)


def test_sigint_stops_at_once_even_with_requests_in_flight() -> None:
    # INT (and QUIT) is the fast stop, as in gunicorn; TERM is the graceful one.
    with ServerProcess("apps:combined", "--root-path", ROOT) as s:
        download = conn_to(s, timeout=20)
        download.request("GET", ROOT + "/tracked?tag=int&count=256&size=65536&cl=1")
        time.sleep(0.3)
        started = time.monotonic()
        s.proc.send_signal(signal.SIGINT)
        assert s.proc.wait(10) == 0
        assert time.monotonic() - started < 5
        download.close()
        assert "Traceback" not in s.log


def test_sigterm_lets_a_queued_response_finish() -> None:
    """A response the application has finished but the client has not received yet is
    still in flight: a graceful stop must send all of it."""
    n = 16 << 20  # more than the socket buffers hold
    with ServerProcess("apps:combined", "--root-path", ROOT) as s:
        conn = conn_to(s)
        try:
            conn.request("GET", f"{ROOT}/raw/blob?n={n}")
            time.sleep(0.5)
            s.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            resp = conn.getresponse()
            try:
                body = resp.read()
            except http.client.IncompleteRead as exc:
                pytest.fail(f"the response was cut after {len(exc.partial)} of {n} bytes")
        finally:
            conn.close()
        assert body == pattern(n)
        assert s.proc.wait(10) == 0


def _stalled_download(s: ServerProcess) -> socket.socket:
    """A connection with a 64 MiB response it does not read."""
    sock = s.connect(10)
    sock.sendall(f"GET {ROOT}/tracked?tag=stalled&count=1024&size=65536&cl=1 HTTP/1.1\r\n"
                 f"Host: x\r\n\r\n".encode())
    sock.recv(100)  # the response has started
    return sock


def test_sigint_after_sigterm_stops_at_once() -> None:
    with ServerProcess("apps:combined", "--root-path", ROOT) as s:
        with _stalled_download(s):
            s.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            assert s.proc.poll() is None  # waiting for the download
            s.proc.send_signal(signal.SIGINT)
            assert s.proc.wait(5) == 0


def test_graceful_timeout_ends_a_stuck_request() -> None:
    with ServerProcess("apps:combined", "--root-path", ROOT, "--graceful-timeout", "1") as s:
        with _stalled_download(s):
            start = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            assert s.proc.wait(10) == 0
            assert 0.5 < time.monotonic() - start < 10
        s.wait_for_log("graceful timeout")


def test_sigint_stops_an_idle_server() -> None:
    with ServerProcess("apps:combined") as s:
        s.proc.send_signal(signal.SIGINT)
        assert s.proc.wait(10) == 0
        assert "Traceback" not in s.log


def test_header_names_with_underscores_do_not_reach_the_app(server):
    # Otherwise X_Forwarded_For would pass as HTTP_X_FORWARDED_FOR behind a proxy that
    # strips only the dashed spelling.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.putrequest("GET", "/app/environ")
    conn.putheader("X_Forwarded_For", "6.6.6.6")
    conn.putheader("X-Real-Header", "kept")
    conn.endheaders()
    env = json.loads(conn.getresponse().read())
    conn.close()
    assert env["HTTP_X_REAL_HEADER"] == "kept"
    assert "HTTP_X_FORWARDED_FOR" not in env


def test_options_asterisk_is_answered_by_the_server(server):
    sock = socket.create_connection((server.host, server.port), timeout=5)
    reply = raw_request(sock, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nAllow: GET, HEAD, POST" in reply


def test_a_non_ascii_root_path_is_stripped_over_the_wire() -> None:
    """--root-path /café: SCRIPT_NAME is the WSGI string of its UTF-8 bytes and is
    stripped from the percent-decoded PATH_INFO (it was compared as text, never matched)."""
    with ServerProcess("apps:environ_app", "--root-path", "/café") as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request("GET", "/caf%C3%A9/x")
        env = json.loads(conn.getresponse().read())
        conn.close()
    assert env["SCRIPT_NAME"] == "/café".encode().decode("latin-1")
    assert env["PATH_INFO"] == "/x"
