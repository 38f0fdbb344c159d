"""Native handlers over real sockets: ``python -m wsgiloop native_apps:application``.

The server runs as a subprocess (see ``tests/support.py``) and serves the
``wsgiloop.web.Application`` natively, on its event loop.  Covered: sync and async
handlers, 404/405, error pages with and without debug, cookies, redirects, chunked
streaming with flush, static files with sendfile (304, 206, 416, traversal attempts), a
Flask app mounted under ``/legacy``, ``Expect: 100-continue``, and long polling: 5,000
clients held by one server and released by one publish, and a poller that disconnects
being dropped.
"""

from __future__ import annotations

import http.client
import json
import re
import resource
import selectors
import socket
import time

import pytest
import requests
from support import ServerProcess


def _pattern(size: int) -> bytes:
    block = bytes(range(256)) * 256
    return (block * (size // len(block) + 1))[:size]


BIG_SIZE = 3 * 1024 * 1024 + 17


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("native")
    root = base / "static"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello static\n")
    (root / "big.bin").write_bytes(_pattern(BIG_SIZE))
    (root / "sub" / "page.html").write_text("<p>page</p>")
    (base / "secret.txt").write_text("top secret")
    (root / "link-out").symlink_to(base / "secret.txt")
    (root / "dir-out").symlink_to(base)
    return root


@pytest.fixture(scope="module")
def server(static_dir):
    # --worker-connections: the 5,000 long polls are held by the one worker.
    with ServerProcess("native_apps:application", "--worker-connections", "6000",
                       env={"NATIVE_STATIC_DIR": str(static_dir)}) as proc:
        yield proc


@pytest.fixture(scope="module")
def debug_server(static_dir):
    with ServerProcess("native_apps:debug_application",
                       env={"NATIVE_STATIC_DIR": str(static_dir)}) as proc:
        yield proc


def fetch(server: ServerProcess, method: str, target: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def raw(server: ServerProcess, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


# -- basics ------------------------------------------------------------------------------------


def test_served_natively(server):
    response, body = fetch(server, "GET", "/mode")
    assert body == b"native", "the CLI served the Application through WSGI, not natively"


def test_sync_and_async_handlers(server):
    response, body = fetch(server, "GET", "/hello/wire")
    assert response.status == 200 and body == b"hello wire"
    assert response.getheader("Content-Length") == str(len(body))
    response, body = fetch(server, "GET", "/async")
    assert response.status == 200
    assert json.loads(body) == {"async": True, "sum": 6}
    assert response.getheader("Content-Type") == "application/json; charset=UTF-8"


def test_keep_alive_across_handlers_static_and_mount(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        for target, expected in [("/hello/a", b"hello a"), ("/static/hello.txt",
                                                            b"hello static\n"),
                                 ("/legacy/", b"legacy index"), ("/async", None),
                                 ("/hello/b", b"hello b")]:
            conn.request("GET", target)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, target
            if expected is not None:
                assert body == expected
        assert response.getheader("Connection") is None  # still keep-alive
    finally:
        conn.close()


def test_404_and_405(server):
    response, body = fetch(server, "GET", "/no/such/thing")
    assert response.status == 404 and b"404: Not Found" in body
    response, _ = fetch(server, "DELETE", "/hello/x")
    assert response.status == 405
    assert response.getheader("Allow") == "GET, POST, HEAD, OPTIONS"


def test_post_body(server):
    response, body = fetch(server, "POST", "/hello/poster", body=b"payload",
                           headers={"Content-Type": "text/plain"})
    assert json.loads(body) == {"name": "poster", "body": "payload"}


def test_multipart_upload(server):
    response = requests.post(f"{server.url}/form", data={"field": "value é"},
                             files={"up": ("f.bin", b"\x00" * 1000, "application/x-test")},
                             timeout=10)
    assert response.status_code == 200
    assert response.json() == {"args": {"field": ["value é"]},
                               "files": {"up": [{"filename": "f.bin", "size": 1000,
                                                 "content_type": "application/x-test"}]}}


def test_expect_100_continue(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /hello/cont HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"howdy")
        data = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == {"name": "cont", "body": "howdy"}


# -- errors ------------------------------------------------------------------------------------


def test_handler_error_is_500_without_traceback(server):
    response, body = fetch(server, "GET", "/boom")
    assert response.status == 500
    assert b"500: Internal Server Error" in body
    assert b"Traceback" not in body and b"secret detail" not in body
    server.wait_for_log(r"error handling GET /boom\nTraceback[\s\S]*ValueError: secret detail")
    response, body = fetch(server, "GET", "/async-boom")
    assert response.status == 500 and b"async secret" not in body
    server.wait_for_log(r"KeyError: 'async secret'")


def test_http_error_status(server):
    response, body = fetch(server, "GET", "/teapot")
    assert response.status == 418 and b"logged only" not in body
    server.wait_for_log(r"418 GET /teapot: logged only")


def test_debug_error_page_shows_the_traceback(debug_server):
    response, body = fetch(debug_server, "GET", "/boom")
    assert response.status == 500
    assert b"Traceback" in body and b"ValueError: secret detail of the failure" in body


# -- cookies and redirects ---------------------------------------------------------------------


def test_cookies_and_signed_cookies(server):
    session = requests.Session()
    response = session.post(f"{server.url}/cookies", data={"sid": "user-7"}, timeout=10)
    set_cookies = response.raw.headers.getlist("Set-Cookie")
    assert any(c.startswith("plain=p1; Path=/; HttpOnly; SameSite=Lax") for c in set_cookies)
    assert any(c.startswith("sid=2|") for c in set_cookies)
    data = session.get(f"{server.url}/cookies", timeout=10).json()
    assert data["cookies"]["plain"] == "p1"
    assert data["signed"] == "user-7"
    forged = data["cookies"]["sid"].replace("dXNlci03", "YWRtaW4")  # "user-7" -> "admin"
    response, body = fetch(server, "GET", "/cookies", headers={"Cookie": f"sid={forged}"})
    assert json.loads(body)["signed"] == ""


def test_redirect(server):
    response, _ = fetch(server, "GET", "/redirect")
    assert response.status == 302
    assert response.getheader("Location") == "/hello/redirected"


# -- streaming ---------------------------------------------------------------------------------


def test_flush_streams_chunks_as_they_are_written(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /stream?n=3&delay=0.3 HTTP/1.1\r\nHost: t\r\n"
                     b"Connection: close\r\n\r\n")
        first = b""
        while b"chunk 0\n\r\n" not in first:
            first += sock.recv(65536)
        assert b"Transfer-Encoding: chunked" in first
        assert b"chunk 1" not in first  # the first chunk came before the handler ended
        data = first
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body == b"8\r\nchunk 0\n\r\n8\r\nchunk 1\n\r\n8\r\nchunk 2\n\r\n0\r\n\r\n"


def test_big_stream(server):
    response, body = fetch(server, "GET", "/big?n=8")
    assert response.status == 200 and len(body) == 8 << 20
    assert response.getheader("Transfer-Encoding") == "chunked"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_reader_gets_back_pressure(server):
    """A handler awaiting flush() stops producing while the client does not read: the
    worker does not buffer the 64 MiB response."""
    pid = server.worker_pid
    before = _rss_kib(pid)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big?n=64 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)
        stalled = _rss_kib(pid)
        total = 0
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    assert total > 64 << 20
    assert stalled - before < 16 * 1024, (before, stalled)


# -- static files ------------------------------------------------------------------------------


def test_static_file_with_sendfile(server):
    response, body = fetch(server, "GET", "/static/big.bin")
    assert response.status == 200
    assert response.getheader("Content-Length") == str(BIG_SIZE)
    assert body == _pattern(BIG_SIZE)
    response, body = fetch(server, "GET", "/static/sub/page.html")
    assert body == b"<p>page</p>" and response.getheader("Content-Type") == "text/html"


def test_static_304(server):
    response, _ = fetch(server, "GET", "/static/hello.txt")
    etag, modified = response.getheader("ETag"), response.getheader("Last-Modified")
    response, body = fetch(server, "GET", "/static/hello.txt", headers={"If-None-Match": etag})
    assert response.status == 304 and body == b""
    response, body = fetch(server, "GET", "/static/hello.txt",
                           headers={"If-Modified-Since": modified})
    assert response.status == 304 and body == b""


def test_static_ranges(server):
    data = _pattern(BIG_SIZE)
    for spec, first, last in [("bytes=100-199", 100, 199), (f"bytes={BIG_SIZE - 10}-",
                                                           BIG_SIZE - 10, BIG_SIZE - 1),
                              ("bytes=-1000", BIG_SIZE - 1000, BIG_SIZE - 1),
                              ("bytes=0-", 0, BIG_SIZE - 1)]:
        response, body = fetch(server, "GET", "/static/big.bin", headers={"Range": spec})
        assert response.status == 206, spec
        assert response.getheader("Content-Range") == f"bytes {first}-{last}/{BIG_SIZE}"
        assert body == data[first:last + 1]
    response, body = fetch(server, "GET", "/static/big.bin",
                           headers={"Range": f"bytes={BIG_SIZE}-"})
    assert response.status == 416
    assert response.getheader("Content-Range") == f"bytes */{BIG_SIZE}"


def test_static_head(server):
    response, body = fetch(server, "HEAD", "/static/big.bin")
    assert response.status == 200 and body == b""
    assert response.getheader("Content-Length") == str(BIG_SIZE)


@pytest.mark.parametrize("target", [
    "/static/../native_apps.py", "/static/%2e%2e/secret.txt", "/static/..%2Fsecret.txt",
    "/static/..%2fsecret.txt", "/static/%2E%2E/%2E%2E/etc/passwd", "/static//etc/passwd",
    "/static/link-out", "/static/dir-out/secret.txt", "/static/sub", "/static/..\\secret.txt",
    "/static/hello.txt%00.html", "/static/sub/..%2F..%2Fsecret.txt",
])
def test_static_traversal_is_refused(server, target):
    response, body = fetch(server, "GET", target)
    assert response.status in (403, 404), target
    assert b"top secret" not in body and b"import" not in body


# -- a mounted WSGI application ----------------------------------------------------------------


def test_flask_mounted_under_legacy(server):
    response, body = fetch(server, "GET", "/legacy/")
    assert response.status == 200 and body == b"legacy index"
    response, body = fetch(server, "GET", "/legacy/env/a/b%20c?x=1")
    assert json.loads(body) == {"script_name": "/legacy", "path_info": "/env/a/b c",
                                "rest": "a/b c", "url": "/legacy/env/x"}
    response, _ = fetch(server, "GET", "/legacy/missing")
    assert response.status == 404  # Flask's own 404
    response, _ = fetch(server, "GET", "/legacyx")
    assert response.status == 404  # not under the prefix: no route


# -- long polling ------------------------------------------------------------------------------


def waiters(server: ServerProcess) -> dict[str, int]:
    return json.loads(fetch(server, "GET", "/waiters")[1])


def wait_for_waiters(server: ServerProcess, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        seen = waiters(server)
        if seen == {"pollers": count, "event": count}:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"waiters {seen}, wanted {count}")
        time.sleep(0.05)


def publish(server: ServerProcess, message: str) -> int:
    return json.loads(fetch(server, "POST", "/publish", body=message.encode())[1])["released"]


def open_pollers(server: ServerProcess, count: int) -> list[socket.socket]:
    """``count`` connections each with a ``GET /poll`` sent, opened in batches below the
    listen backlog; non-blocking throughout."""
    request = b"GET /poll HTTP/1.1\r\nHost: t\r\n\r\n"
    selector = selectors.DefaultSelector()
    sockets: list[socket.socket] = []
    try:
        for start in range(0, count, 500):
            batch = []
            for _ in range(min(500, count - start)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setblocking(False)
                sock.connect_ex((server.host, server.port))
                batch.append(sock)
                selector.register(sock, selectors.EVENT_WRITE)
            pending = len(batch)
            deadline = time.monotonic() + 20
            while pending:
                assert time.monotonic() < deadline, "connecting took too long"
                for key, _ in selector.select(1.0):
                    sock = key.fileobj  # type: ignore[assignment]
                    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                    sock.send(request)
                    selector.unregister(sock)
                    pending -= 1
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    finally:
        selector.close()
    return sockets


def read_responses(sockets: list[socket.socket], timeout: float = 30.0) -> dict[int, bytes]:
    """Read one whole response (with Content-Length) from each socket; fd -> bytes."""
    selector = selectors.DefaultSelector()
    buffers: dict[int, bytes] = {}
    complete: dict[int, bytes] = {}
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
        buffers[sock.fileno()] = b""
    deadline = time.monotonic() + timeout
    try:
        while len(complete) < len(sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                sock = key.fileobj
                data = sock.recv(65536)  # type: ignore[union-attr]
                fd = key.fd
                buffers[fd] += data
                head, sep, body = buffers[fd].partition(b"\r\n\r\n")
                if not data or sep:
                    length = re.search(rb"Content-Length: (\d+)", head)
                    if not data or (length and len(body) >= int(length.group(1))):
                        complete[fd] = buffers[fd]
                        selector.unregister(sock)
    finally:
        selector.close()
    return complete


def test_5000_long_polls_released_by_one_publish(server):
    count = 5000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 500:
        if hard != resource.RLIM_INFINITY and hard < count + 500:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {count + 500}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count + 500, hard))
    wait_for_waiters(server, 0)
    sockets = open_pollers(server, count)
    try:
        wait_for_waiters(server, count)
        assert publish(server, "news for all") == count
        responses = read_responses(sockets)
        ok = sum(1 for r in responses.values()
                 if r.startswith(b"HTTP/1.1 200 OK\r\n") and r.endswith(b"\r\n\r\nnews for all"))
        assert ok == count
        wait_for_waiters(server, 0)
    finally:
        for sock in sockets:
            sock.close()


def test_disconnected_poller_is_dropped(server):
    wait_for_waiters(server, 0)
    sockets = open_pollers(server, 10)
    try:
        wait_for_waiters(server, 10)
        for sock in sockets[:4]:
            sock.close()
        wait_for_waiters(server, 6, timeout=10)
        assert publish(server, "to the rest") == 6
        responses = read_responses(sockets[4:])
        assert len(responses) == 6
        assert all(r.endswith(b"to the rest") for r in responses.values())
        wait_for_waiters(server, 0)
    finally:
        for sock in sockets:
            sock.close()


def _half_closed_exchange(server: ServerProcess, request: bytes) -> bytes:
    """Send ``request``, shut the sending side, and read until the server closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_async_handler_answers_a_client_that_half_closed(server):
    """An async handler still working when the client shuts its sending side answers it
    (the end of input used to count as a disconnect, and the answer was dropped)."""
    for _ in range(50):
        reply = _half_closed_exchange(server, b"GET /async HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
        assert json.loads(reply.partition(b"\r\n\r\n")[2]) == {"async": True, "sum": 6}


def test_half_closed_poller_is_dropped(server):
    """A ``cancel_on_disconnect`` handler waits for events, not for its own work: for
    it the client's end of input is its departure (over TCP a close looks the same until
    something is sent), so it stops waiting and the connection closes unanswered."""
    wait_for_waiters(server, 0)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for_waiters(server, 1)
        sock.shutdown(socket.SHUT_WR)
        wait_for_waiters(server, 0, timeout=10)
        assert sock.recv(65536) == b""


def test_server_log_is_clean(server):
    """No unexpected errors: only the ones the error tests provoked."""
    unexpected = [line for line in server.log.splitlines()
                  if "[ERROR]" in line and "GET /boom" not in line
                  and "GET /async-boom" not in line]
    assert not unexpected, server.log


def test_access_log_atoms_for_native_handlers(static_dir):
    """gunicorn's atoms in the access log of a native app: the response header atom
    reads the handler's fields, and the Content-Length the server added to its body;
    an environ atom prints "-" (there is no environ)."""
    fmt = ('%(m)s %(U)s %(s)s %(B)s %({content-type}o)s %({content-length}o)s '
           '%({REMOTE_ADDR}e)s %(L)s')
    with ServerProcess("native_apps:application", "--access-log", "-",
                       "--access-log-format", fmt,
                       env={"NATIVE_STATIC_DIR": str(static_dir)}) as proc:
        response, body = fetch(proc, "GET", "/hello/w%C3%B6rld")
        assert response.status == 200
        deadline = time.monotonic() + 5
        pattern = (r"GET /hello/w\u00c3\u00b6rld 200 (\d+) text/plain; charset=UTF-8 (\d+) - "
                   r"\d+\.\d{6}$")
        while not re.search(pattern, proc.stdout, re.M) and time.monotonic() < deadline:
            time.sleep(0.02)
        match = re.search(pattern, proc.stdout, re.M)
        assert match, proc.stdout
        assert int(match.group(1)) == int(match.group(2)) == len(body)
