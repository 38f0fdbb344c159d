"""wsgiloop behind a real nginx (Debian's ``/usr/sbin/nginx``), over TCP and a Unix socket.

nginx runs in the foreground with its own configuration, logs, pid file and temp
directories under ``tmp_path``, on a free 127.0.0.1 port, and is always stopped by the
fixture.  It is a hard requirement: CI installs it (``apt-get install -y nginx``), so a
missing nginx fails these tests instead of skipping them.

Who is trusted: nginx connects to wsgiloop from ``127.0.0.2`` (``proxy_bind``) and
wsgiloop trusts only that address (``--forwarded-allow-ips 127.0.0.2``), so the test
client on 127.0.0.1 is *not* a trusted proxy -- as a browser would not be.  A client that
spoofs ``X-Forwarded-For: 6.6.6.6`` then gets REMOTE_ADDR 127.0.0.1: the right-most
untrusted hop, which nginx appended.  Over the Unix socket wsgiloop trusts ``unix`` only.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import pattern
from nginx_support import NGINX, write_nginx_conf
from support import ServerProcess, free_port, terminate, wait_listening

APP = "apps:combined"
NGINX_PEER = "127.0.0.2"  # nginx's source address towards wsgiloop (proxy_bind)

# Locations every nginx here serves.  /xff/ and /fwd/ strip their prefix, so
# /xff/stream reaches the app's /stream route.
XFF_HEADERS = """
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Host $http_host;
"""
FORWARDED_HEADERS = """
            proxy_set_header Forwarded "${fwd_prior}for=$remote_addr;proto=https;host=$http_host";
"""
COMMON = """
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 20s;
"""


# -- nginx -------------------------------------------------------------------------------


class Nginx:
    """An nginx master in the foreground, serving ``locations`` on a free port."""

    def __init__(self, prefix: Path, upstream: str, locations: str,
                 upstream_options: str = "") -> None:
        if not os.path.exists(NGINX):
            pytest.fail(f"nginx is required for these tests but {NGINX} is missing: "
                        "install it with `apt-get install -y nginx` (CI's setup does)",
                        pytrace=False)
        self.prefix = prefix
        self.port = free_port()
        self.error_log = prefix / "error.log"
        self.conf = write_nginx_conf(prefix, f"""
    client_max_body_size 64m;
    map $http_forwarded $fwd_prior {{
        ""      "";
        default "$http_forwarded, ";
    }}
    upstream wsgiloop {{
        server {upstream};
        keepalive 8;
        {upstream_options}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
{locations}
    }}""", worker_connections=128)
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-p", str(prefix), "-e", str(self.error_log),
             "-g", "daemon off;"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_listening(self.proc, [self.port], "nginx",
                       details=lambda: self.output() + self.log(), stop=self.stop)

    def output(self) -> str:
        if self.proc.poll() is None or self.proc.stdout is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace")

    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def errors(self) -> list[str]:
        """Error-log lines at level error or worse (an upstream reset, a premature close,
        an invalid response from wsgiloop...)."""
        return [line for line in self.log().splitlines()
                if any(f"[{level}]" in line for level in ("error", "crit", "alert", "emerg"))]

    def stop(self) -> None:
        terminate(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def connect(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def locations(upstream: str = "http://wsgiloop") -> str:
    return f"""
        location /xff/ {{
            proxy_pass {upstream}/;
            proxy_bind {NGINX_PEER};
{XFF_HEADERS}{COMMON}
        }}
        location /fwd/ {{
            proxy_pass {upstream}/;
            proxy_bind {NGINX_PEER};
{FORWARDED_HEADERS}{COMMON}
        }}
        location /plain/ {{
            proxy_pass {upstream}/;
            proxy_bind {NGINX_PEER};
{COMMON}
        }}
"""


@pytest.fixture(scope="module")
def backend() -> Iterator[ServerProcess]:
    with ServerProcess(APP, "--forwarded-allow-ips", NGINX_PEER, "--keep-alive", "15") as srv:
        yield srv


@pytest.fixture(scope="module")
def nginx(backend: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    proxy = Nginx(tmp_path_factory.mktemp("nginx"), f"127.0.0.1:{backend.port}", locations())
    try:
        yield proxy
    finally:
        proxy.stop()
    assert not proxy.errors(), "nginx logged errors about wsgiloop:\n" + "\n".join(
        proxy.errors())


@pytest.fixture(scope="module")
def unix_socket_dir() -> Iterator[Path]:
    # Short: a Unix socket path must fit in 108 bytes; pytest's tmp_path may not.
    directory = Path(tempfile.mkdtemp(prefix="wsgiloop-nginx-", dir="/tmp"))
    os.chmod(directory, 0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def unix_backend(unix_socket_dir: Path) -> Iterator[ServerProcess]:
    path = unix_socket_dir / "s.sock"
    with ServerProcess(APP, "--forwarded-allow-ips", "unix", bind=f"unix:{path}") as srv:
        srv.socket_path = path  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def unix_nginx(unix_backend: ServerProcess,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    path = unix_backend.socket_path  # type: ignore[attr-defined]
    locs = f"""
        location / {{
            proxy_pass http://unix:{path}:;
{XFF_HEADERS}{COMMON}
        }}
        location /fwd/ {{
            proxy_pass http://unix:{path}:/;
{FORWARDED_HEADERS}{COMMON}
        }}
"""
    proxy = Nginx(tmp_path_factory.mktemp("nginx-unix"), f"unix:{path}", locs)
    try:
        yield proxy
    finally:
        proxy.stop()
    assert not proxy.errors(), "nginx logged errors about wsgiloop:\n" + "\n".join(
        proxy.errors())


# -- helpers -----------------------------------------------------------------------------


def get(proxy: Nginx, path: str, headers: dict | None = None,
        method: str = "GET", body: Any = None) -> tuple[http.client.HTTPResponse, bytes]:
    conn = proxy.connect()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def environ_via(proxy: Nginx, path: str, headers: dict | None = None) -> dict:
    resp, body = get(proxy, path, headers)
    assert resp.status == 200, (resp.status, body, proxy.log())
    return json.loads(body)


SPOOFS = {
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "evil.example",
    "Host": "shop.example:8443",
}


# -- X-Forwarded-* over TCP --------------------------------------------------------------


def test_x_forwarded_headers_through_nginx(nginx: Nginx) -> None:
    environ = environ_via(nginx, "/xff/environ?q=1", SPOOFS)
    # What nginx sent on: the client's value with nginx's view of the client appended.
    assert environ["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 127.0.0.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1", "the spoofed left-most hop won"
    assert environ["wsgi.url_scheme"] == "https"  # nginx's fixed X-Forwarded-Proto
    assert environ["HTTP_HOST"] == "shop.example:8443"  # X-Forwarded-Host, not "wsgiloop"
    assert environ["PATH_INFO"] == "/environ"
    assert environ["QUERY_STRING"] == "q=1"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_without_spoofing(nginx: Nginx) -> None:
    environ = environ_via(nginx, "/xff/environ")
    assert environ["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == f"127.0.0.1:{nginx.port}"


def test_client_from_another_address(nginx: Nginx) -> None:
    """A client on 127.0.0.3: REMOTE_ADDR follows nginx's $remote_addr."""
    sock = socket.create_connection(("127.0.0.1", nginx.port), timeout=10,
                                    source_address=("127.0.0.3", 0))
    with sock:
        sock.sendall(b"GET /xff/environ HTTP/1.1\r\nHost: a.example\r\n"
                     b"X-Forwarded-For: 10.0.0.1, 6.6.6.6\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    environ = json.loads(body)
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1, 6.6.6.6, 127.0.0.3"
    assert environ["REMOTE_ADDR"] == "127.0.0.3"
    assert environ["HTTP_HOST"] == "a.example"


def test_proxy_without_forwarding_headers(nginx: Nginx) -> None:
    """nginx in front, but sending no X-Forwarded-*: REMOTE_ADDR is nginx itself."""
    environ = environ_via(nginx, "/plain/environ", {"Host": "h.example"})
    assert environ["REMOTE_ADDR"] == NGINX_PEER
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["HTTP_HOST"] == "wsgiloop"  # nginx's default Host: $proxy_host


# -- RFC 7239 Forwarded ------------------------------------------------------------------


def test_forwarded_header_through_nginx(nginx: Nginx) -> None:
    environ = environ_via(nginx, "/fwd/environ", {
        "Host": "shop.example",
        "Forwarded": 'for=6.6.6.6;proto=http;host="evil.example"',
        "X-Forwarded-For": "7.7.7.7",  # Forwarded is preferred over X-Forwarded-*
    })
    assert environ["HTTP_FORWARDED"] == ('for=6.6.6.6;proto=http;host="evil.example", '
                                         'for=127.0.0.1;proto=https;host=shop.example')
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "shop.example"


def test_forwarded_header_without_a_prior_hop(nginx: Nginx) -> None:
    environ = environ_via(nginx, "/fwd/environ", {"Host": "shop.example:8443"})
    assert environ["HTTP_FORWARDED"] == "for=127.0.0.1;proto=https;host=shop.example:8443"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "shop.example:8443"


# -- connections and bodies through nginx ------------------------------------------------


def test_keep_alive_through_nginx(nginx: Nginx) -> None:
    """The client keeps its connection to nginx, and nginx keeps its (upstream
    keepalive) connection to wsgiloop: every request arrives on the same wsgiloop
    connection, i.e. from the same nginx source port."""
    conn = nginx.connect()
    try:
        conn.connect()
        sock = conn.sock
        ports = set()
        for i in range(6):
            conn.request("GET", f"/xff/environ?i={i}")
            resp = conn.getresponse()
            environ = json.loads(resp.read())
            assert resp.status == 200
            assert conn.sock is sock, "nginx closed the client connection"
            assert environ["QUERY_STRING"] == f"i={i}"
            assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
            assert "HTTP_CONNECTION" not in environ
            ports.add(environ["REMOTE_PORT"])
        assert len(ports) == 1, f"nginx opened {len(ports)} connections to wsgiloop"
    finally:
        conn.close()


def test_chunked_response_through_nginx(nginx: Nginx) -> None:
    """No Content-Length from the app: wsgiloop sends chunked to nginx (HTTP/1.1), and
    nginx re-chunks it for the client."""
    resp, body = get(nginx, "/xff/stream?count=300&size=3001")
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert body == pattern(3001) * 300


def test_streamed_response_arrives_before_it_ends(nginx: Nginx) -> None:
    """With proxy_buffering off the first bytes reach the client while the app still
    has more to send (a 20 MB stream would not fit in nginx's buffers)."""
    conn = nginx.connect(timeout=20)
    try:
        conn.request("GET", "/xff/stream?count=320&size=65536")
        resp = conn.getresponse()
        assert resp.status == 200
        h = hashlib.sha256()
        total = 0
        while block := resp.read(1 << 20):
            h.update(block)
            total += len(block)
    finally:
        conn.close()
    assert total == 320 * 65536
    assert h.hexdigest() == hashlib.sha256(pattern(65536) * 320).hexdigest()


def test_upload_through_nginx(nginx: Nginx) -> None:
    data = pattern(5 * 1024 * 1024 + 11)
    resp, body = get(nginx, "/xff/digest", method="POST", body=data,
                     headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 200, body
    result = json.loads(body)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["length"] == len(data)


def test_keep_alive_after_a_chunked_response(nginx: Nginx) -> None:
    conn = nginx.connect()
    try:
        ports = set()
        for _ in range(3):
            conn.request("GET", "/xff/stream?count=5&size=100")
            resp = conn.getresponse()
            assert resp.read() == pattern(100) * 5
            conn.request("GET", "/xff/environ")
            ports.add(json.loads(conn.getresponse().read())["REMOTE_PORT"])
        assert len(ports) == 1
    finally:
        conn.close()


# -- over a Unix socket ------------------------------------------------------------------


def test_x_forwarded_headers_over_unix_socket(unix_nginx: Nginx) -> None:
    environ = environ_via(unix_nginx, "/environ", SPOOFS)
    assert environ["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 127.0.0.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "shop.example:8443"


def test_forwarded_header_over_unix_socket(unix_nginx: Nginx) -> None:
    environ = environ_via(unix_nginx, "/fwd/environ", {
        "Host": "shop.example", "Forwarded": "for=6.6.6.6;proto=http"})
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "shop.example"


def test_stream_and_keep_alive_over_unix_socket(unix_nginx: Nginx) -> None:
    conn = unix_nginx.connect()
    try:
        for _ in range(3):
            conn.request("GET", "/stream?count=50&size=1000")
            resp = conn.getresponse()
            assert resp.getheader("Transfer-Encoding") == "chunked"
            assert resp.read() == pattern(1000) * 50
    finally:
        conn.close()


# -- directly, from an untrusted peer ----------------------------------------------------


@pytest.fixture(scope="module")
def untrusting() -> Iterator[ServerProcess]:
    with ServerProcess(APP, "--forwarded-allow-ips", "10.9.9.9") as srv:
        yield srv


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
     "X-Forwarded-Host": "evil.example"},
    {"Forwarded": 'for=6.6.6.6;proto=https;host="evil.example"'},
], ids=["x-forwarded", "forwarded"])
def test_headers_from_an_untrusted_peer_are_ignored(untrusting: ServerProcess,
                                                    headers: dict) -> None:
    conn = http.client.HTTPConnection(untrusting.host, untrusting.port, timeout=10)
    try:
        conn.request("GET", "/environ", headers={"Host": "real.example", **headers})
        resp = conn.getresponse()
        environ = json.loads(resp.read())
    finally:
        conn.close()
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["HTTP_HOST"] == "real.example"


def test_nginx_is_stopped_by_the_fixture(tmp_path: Path) -> None:
    """The finalizer's terminate() ends the master and its worker (no leftovers)."""
    proxy = Nginx(tmp_path, "127.0.0.1:9", locations())
    proxy.stop()
    assert proxy.proc.returncode is not None
    with pytest.raises(OSError):  # no worker left holding the listening socket
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
