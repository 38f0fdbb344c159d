"""HTTPS end to end: wsgiloop with ``--certfile``/``--keyfile`` (and ``--ca-certs``).

Certificates come from ``trustme``: a throw-away CA issues the server's certificate (for
127.0.0.1 and localhost) and, for the ``--ca-certs`` tests, a client certificate.  The
clients are ``http.client``, ``requests`` and raw (TLS) sockets.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import trustme
from apps import pattern
from support import ROOT, ServerProcess

APP = "apps:combined"


# -- fixtures ----------------------------------------------------------------------------


class Certs:
    """A CA and the PEM files wsgiloop and the clients are given."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.certfile = directory / "server.pem"
        self.keyfile = directory / "server.key"
        self.ca_file = directory / "ca.pem"
        self.certfile.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        self.keyfile.write_bytes(server.private_key_pem.bytes())
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.client = self.ca.issue_cert("client.example.org")
        self.client_pem = directory / "client.pem"  # key and certificate chain in one file
        self.client.private_key_and_cert_chain_pem.write_to_path(str(self.client_pem))

    def client_context(self, with_cert: bool = False,
                       max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_cert:
            self.client.configure_cert(context)
        if max_version is not None:
            context.maximum_version = max_version
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(certs: Certs):
    with ServerProcess(APP, "--certfile", str(certs.certfile),
                       "--keyfile", str(certs.keyfile)) as srv:
        yield srv


@pytest.fixture(scope="module")
def mtls_server(certs: Certs):
    with ServerProcess(APP, "--certfile", str(certs.certfile), "--keyfile",
                       str(certs.keyfile), "--ca-certs", str(certs.ca_file)) as srv:
        yield srv


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = pattern(5 * 1024 * 1024 + 12345)  # several MB, not a multiple of any buffer
    path = tmp_path_factory.mktemp("files") / "big.bin"
    path.write_bytes(data)
    return path, data


# -- helpers -----------------------------------------------------------------------------


def https(server: ServerProcess, certs: Certs, timeout: float = 10.0,
          **context: Any) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(server.host, server.port, timeout=timeout,
                                       context=certs.client_context(**context))


def base_url(server: ServerProcess) -> str:
    return f"https://{server.host}:{server.port}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_to_eof(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Read until EOF; returns what came and how long EOF took.  A reset or a timeout
    fails the test (the server must close cleanly, and must not leave us hanging)."""
    sock.settimeout(timeout)
    started = time.monotonic()
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"no EOF within {timeout}s (received {b''.join(chunks)!r})")
        except ConnectionResetError:
            pytest.fail(f"connection reset instead of a clean close "
                        f"(received {b''.join(chunks)!r})")
        if not chunk:
            return b"".join(chunks), time.monotonic() - started
        chunks.append(chunk)


# -- the basics --------------------------------------------------------------------------


def test_url_scheme_is_https(server: ServerProcess, certs: Certs) -> None:
    conn = https(server, certs)
    try:
        conn.request("GET", "/environ?x=1")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, body
    environ = json.loads(body)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["QUERY_STRING"] == "x=1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(server.port)


TLS_MODULES = "ssl,wsgiloop.tlsstream"


def _worker_modules(server: ServerProcess, conn: http.client.HTTPConnection) -> dict:
    """Which of the TLS modules the worker that answers has imported, asked from inside
    it (this test process imports ssl itself: only the server's answer counts)."""
    try:
        conn.request("GET", f"/modules?names={TLS_MODULES}")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, body
    answer = json.loads(body)
    assert answer["pid"] == server.worker_pid  # the worker answered, not another process
    return answer["loaded"]


def test_a_plain_http_worker_does_not_import_ssl() -> None:
    """OpenSSL costs every worker megabytes: only a server with a certificate loads it."""
    with ServerProcess(APP) as plain:
        conn = http.client.HTTPConnection(plain.host, plain.port, timeout=5)
        assert _worker_modules(plain, conn) == {"ssl": False, "wsgiloop.tlsstream": False}


def test_a_tls_worker_serves_with_ssl(server: ServerProcess, certs: Certs) -> None:
    assert _worker_modules(server, https(server, certs)) == {"ssl": True,
                                                             "wsgiloop.tlsstream": True}


def test_requests_verifies_the_certificate(server: ServerProcess, certs: Certs) -> None:
    resp = requests.get(base_url(server) + "/environ", verify=str(certs.ca_file), timeout=10)
    assert resp.status_code == 200
    assert resp.json()["wsgi.url_scheme"] == "https"
    assert resp.headers["Server"] == "wsgiloop"
    # And a client that does not trust the CA refuses the server's certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(base_url(server) + "/environ", timeout=10)


def test_alpn_offers_http11(server: ServerProcess, certs: Certs) -> None:
    context = certs.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"


# -- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["&cl=1", ""], ids=["content-length", "chunked"])
def test_file_wrapper_arrives_whole(server: ServerProcess, certs: Certs, big_file,
                                    query: str) -> None:
    """``/raw/file`` returns ``wsgi.file_wrapper``, which is sendfile() on plain TCP;
    under TLS the stream must fall back to reading the file and writing it."""
    path, data = big_file
    conn = https(server, certs, timeout=30)
    try:
        conn.request("GET", f"/raw/file?path={quote(str(path))}{query}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        if query:
            assert resp.getheader("Content-Length") == str(len(data))
        else:
            assert resp.getheader("Transfer-Encoding") == "chunked"
        assert len(body) == len(data)
        assert sha(body) == sha(data)
        # The connection is still in step afterwards.
        conn.request("GET", "/environ?after-file")
        resp = conn.getresponse()
        assert json.loads(resp.read())["QUERY_STRING"] == "after-file"
    finally:
        conn.close()


def test_file_wrapper_with_offset(server: ServerProcess, certs: Certs, big_file) -> None:
    path, data = big_file
    skip = 1_000_003
    resp = requests.get(base_url(server) + f"/raw/file?path={quote(str(path))}&cl=1&skip={skip}",
                        verify=str(certs.ca_file), timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(data) - skip)
    assert sha(resp.content) == sha(data[skip:])


def test_slow_reader_gets_the_whole_file(server: ServerProcess, certs: Certs,
                                        big_file) -> None:
    """A client that lets the server's writes back up (small receive buffer, a pause
    before reading): TLS writes that would block must be retried, not lost."""
    path, data = big_file
    context = certs.client_context()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect((server.host, server.port))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(f"GET /raw/file?path={quote(str(path))}&cl=1 HTTP/1.1\r\n"
                    "Host: x\r\nConnection: close\r\n\r\n".encode())
        time.sleep(1.0)
        received = bytearray()
        while True:
            chunk = tls.recv(16384)
            if not chunk:
                break
            received += chunk
            if len(received) < 256 * 1024:
                time.sleep(0.001)  # read slowly at first
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert len(body) == len(data)
    assert sha(body) == sha(data)


def test_concurrent_tls_clients(server: ServerProcess, certs: Certs) -> None:
    n = 2 * 1024 * 1024 + 1
    expected = sha(pattern(n))
    results: list[str] = []

    def fetch() -> None:
        conn = https(server, certs, timeout=30)
        try:
            for _ in range(2):
                conn.request("GET", f"/blob?n={n}")
                results.append(sha(conn.getresponse().read()))
        finally:
            conn.close()

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [expected] * 16


def test_big_response_body(server: ServerProcess, certs: Certs) -> None:
    n = 6 * 1024 * 1024 + 7
    resp = requests.get(base_url(server) + f"/blob?n={n}", verify=str(certs.ca_file),
                        timeout=30)
    assert resp.status_code == 200
    assert sha(resp.content) == sha(pattern(n))


def test_big_upload(server: ServerProcess, certs: Certs) -> None:
    data = pattern(8 * 1024 * 1024 + 3)
    resp = requests.post(base_url(server) + "/digest", data=data, verify=str(certs.ca_file),
                         timeout=30)
    assert resp.status_code == 200
    assert resp.json()["sha256"] == sha(data)
    assert resp.json()["length"] == len(data)


def test_big_chunked_upload(server: ServerProcess, certs: Certs) -> None:
    data = pattern(3 * 1024 * 1024 + 5)
    pieces = (data[i:i + 100_000] for i in range(0, len(data), 100_000))
    resp = requests.post(base_url(server) + "/digest", data=pieces, verify=str(certs.ca_file),
                         timeout=30)
    assert resp.status_code == 200
    assert resp.json()["sha256"] == sha(data)


def test_echo_round_trip(server: ServerProcess, certs: Certs) -> None:
    data = pattern(300_000)
    conn = https(server, certs)
    try:
        conn.request("PUT", "/echo", body=data,
                     headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200
    assert resp.getheader("X-Method") == "PUT"
    assert body == data


# -- connections -------------------------------------------------------------------------


def test_keep_alive_over_tls(server: ServerProcess, certs: Certs) -> None:
    conn = https(server, certs)
    try:
        conn.connect()
        sock = conn.sock
        ports = set()
        for i in range(5):
            conn.request("GET", f"/environ?i={i}")
            resp = conn.getresponse()
            environ = json.loads(resp.read())
            assert resp.status == 200
            assert resp.getheader("Connection", "").lower() != "close"
            assert environ["QUERY_STRING"] == f"i={i}"
            ports.add(environ["REMOTE_PORT"])
            assert conn.sock is sock, "http.client had to reconnect"
        assert ports == {str(sock.getsockname()[1])}
    finally:
        conn.close()


def test_requests_session_reuses_the_connection(server: ServerProcess, certs: Certs) -> None:
    verify = str(certs.ca_file)  # per request: REQUESTS_CA_BUNDLE beats Session.verify
    with requests.Session() as session:
        ports = {session.get(base_url(server) + "/environ", verify=verify,
                             timeout=10).json()["REMOTE_PORT"] for _ in range(4)}
        body = session.post(base_url(server) + "/echo", data=b"x" * 70_000, verify=verify,
                            timeout=10)
        assert body.content == b"x" * 70_000
        ports.add(session.get(base_url(server) + "/environ", verify=verify,
                              timeout=10).json()["REMOTE_PORT"])
    assert len(ports) == 1


def test_pipelined_requests_over_tls(server: ServerProcess, certs: Certs) -> None:
    context = certs.client_context()
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /environ?a HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"GET /environ?b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    assert data.count(b"HTTP/1.1 200 ") == 2
    assert data.index(b'"QUERY_STRING": "a"') < data.index(b'"QUERY_STRING": "b"')


def test_plain_http_to_the_tls_port_is_closed_cleanly(server: ServerProcess,
                                                      certs: Certs) -> None:
    with server.connect(timeout=10) as sock:
        sock.sendall(b"GET /environ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data, waited = read_to_eof(sock, timeout=8)
    assert not data.startswith(b"HTTP/"), data  # no plain-text answer
    assert waited < 5, f"the server took {waited:.1f}s to close"
    # A TLS client is still served, and so is a second plain one.
    resp = requests.get(base_url(server) + "/environ", verify=str(certs.ca_file), timeout=10)
    assert resp.json()["wsgi.url_scheme"] == "https"
    with server.connect(timeout=10) as sock:
        sock.sendall(b"\x00garbage, not a TLS ClientHello\r\n\r\n")
        read_to_eof(sock, timeout=8)
    assert server.proc.poll() is None


def test_client_that_connects_and_says_nothing_does_not_block_others(
        server: ServerProcess, certs: Certs) -> None:
    """A TCP connection that never starts its handshake ties up nothing but itself."""
    with server.connect(timeout=10):
        resp = requests.get(base_url(server) + "/environ", verify=str(certs.ca_file),
                            timeout=10)
        assert resp.status_code == 200


def test_client_closing_mid_handshake(server: ServerProcess, certs: Certs) -> None:
    context = certs.client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    with server.connect(timeout=10) as sock:
        sock.sendall(hello[: len(hello) // 2])  # half a ClientHello, then gone
    resp = requests.get(base_url(server) + "/environ", verify=str(certs.ca_file), timeout=10)
    assert resp.status_code == 200


# -- client certificates (--ca-certs) ----------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
def test_client_without_certificate_is_refused(mtls_server: ServerProcess, certs: Certs,
                                               version: ssl.TLSVersion) -> None:
    """Refused in the handshake: under TLS 1.2 the client's do_handshake() fails; under
    TLS 1.3 the client finishes first and the server's alert arrives on the first read.
    Either way no HTTP response is ever sent."""
    context = certs.client_context(max_version=version)
    context.minimum_version = version
    received = b""
    with socket.create_connection((mtls_server.host, mtls_server.port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert version == ssl.TLSVersion.TLSv1_3, "the TLS 1.2 handshake succeeded"
                tls.sendall(b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n")
                received = tls.recv(65536)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            if version == ssl.TLSVersion.TLSv1_2:
                assert isinstance(exc, ssl.SSLError), exc
        except TimeoutError:
            pytest.fail("the server neither refused nor answered the client")
    assert received == b"", received


def test_requests_without_client_certificate_fails(mtls_server: ServerProcess,
                                                   certs: Certs) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is a subclass
        requests.get(base_url(mtls_server) + "/environ", verify=str(certs.ca_file),
                     timeout=10)


def test_client_with_certificate_is_served(mtls_server: ServerProcess, certs: Certs) -> None:
    conn = https(mtls_server, certs, with_cert=True)
    try:
        for _ in range(2):
            conn.request("GET", "/environ")
            resp = conn.getresponse()
            environ = json.loads(resp.read())
            assert resp.status == 200
            assert environ["wsgi.url_scheme"] == "https"
    finally:
        conn.close()
    resp = requests.get(base_url(mtls_server) + "/environ", verify=str(certs.ca_file),
                        cert=str(certs.client_pem), timeout=10)
    assert resp.status_code == 200


def test_client_certificate_from_another_ca_is_refused(mtls_server: ServerProcess,
                                                       certs: Certs,
                                                       tmp_path: Path) -> None:
    other = trustme.CA().issue_cert("intruder.example.org")
    pem = tmp_path / "intruder.pem"
    other.private_key_and_cert_chain_pem.write_to_path(str(pem))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(base_url(mtls_server) + "/environ", verify=str(certs.ca_file),
                     cert=str(pem), timeout=10)
    assert mtls_server.proc.poll() is None


# -- configuration errors ----------------------------------------------------------------


def run_wsgiloop(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    return subprocess.run([sys.executable, "-m", "wsgiloop", APP, "--bind", "127.0.0.1:0",
                           *args], capture_output=True, text=True, timeout=20, cwd=ROOT,
                          env=env)


@pytest.mark.parametrize("case", ["missing", "not-pem", "wrong-key"])
def test_bad_certificate_is_one_error_line(case: str, certs: Certs, tmp_path: Path) -> None:
    if case == "missing":
        args = ["--certfile", str(tmp_path / "no-such-cert.pem")]
    elif case == "not-pem":
        bogus = tmp_path / "bogus.pem"
        bogus.write_text("this is not a certificate\n")
        args = ["--certfile", str(bogus)]
    else:
        other_key = tmp_path / "other.key"
        other_key.write_bytes(trustme.CA().issue_cert("x.example").private_key_pem.bytes())
        args = ["--certfile", str(certs.certfile), "--keyfile", str(other_key)]
    result = run_wsgiloop(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wsgiloop: error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert "Listening at" not in result.stderr


# -- --ciphers (gunicorn's ciphers) ------------------------------------------------------------


def test_ciphers_narrow_what_tls12_clients_can_use(certs: Certs) -> None:
    wanted = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
    with ServerProcess(APP, "--certfile", str(certs.certfile), "--keyfile",
                       str(certs.keyfile), "--ciphers", wanted) as srv:
        conn = https(srv, certs, max_version=ssl.TLSVersion.TLSv1_2)
        conn.request("GET", "/environ")
        assert conn.getresponse().status == 200
        assert conn.sock.cipher()[0] in wanted.split(":")
        conn.close()
        # A TLS 1.2 client offering only other suites cannot connect.
        context = certs.client_context(max_version=ssl.TLSVersion.TLSv1_2)
        context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
        conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=10, context=context)
        with pytest.raises(ssl.SSLError):
            conn.request("GET", "/environ")
        conn.close()


def test_ciphers_that_select_nothing_are_one_error_line() -> None:
    result = subprocess.run([sys.executable, "-m", "wsgiloop", APP, "--ciphers", "NOPE-NOPE"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "wsgiloop: error: --ciphers: invalid value 'NOPE-NOPE': OpenSSL selects no cipher "
        "from this list"]


# -- settings that would silently weaken TLS ----------------------------------------------


@pytest.mark.parametrize("flag,needs_file", [
    ("--keyfile", True), ("--ca-certs", True), ("--cert-reqs", False), ("--ciphers", False)])
def test_tls_settings_without_a_certificate_are_refused(flag: str, needs_file: bool,
                                                        certs: Certs) -> None:
    """Without --certfile the server would serve plain HTTP and say nothing."""
    value = {"--keyfile": str(certs.keyfile), "--ca-certs": str(certs.ca_file),
             "--cert-reqs": "2", "--ciphers": "ECDHE+AESGCM"}[flag]
    result = run_wsgiloop(flag, value)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"wsgiloop: error: {flag}: needs --certfile (without a certificate wsgiloop serves "
        "plain HTTP)"]


def test_client_certificates_asked_for_without_a_ca_are_refused(certs: Certs) -> None:
    result = run_wsgiloop("--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile),
                          "--cert-reqs", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "wsgiloop: error: --cert-reqs: client certificates need --ca-certs to verify them"]


@pytest.mark.parametrize("flag", ["--certfile", "--keyfile", "--ca-certs"])
def test_a_missing_tls_file_is_named_with_its_setting(flag: str, certs: Certs,
                                                      tmp_path: Path) -> None:
    files = {"--certfile": str(certs.certfile), "--keyfile": str(certs.keyfile),
             "--ca-certs": str(certs.ca_file)}
    files[flag] = str(tmp_path / "gone.pem")
    result = run_wsgiloop(*[item for pair in files.items() for item in pair])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"wsgiloop: error: {flag} {files[flag]}: no such file"]


def test_a_key_that_does_not_match_names_both_files(certs: Certs, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    other_key.write_bytes(trustme.CA().issue_cert("x.example").private_key_pem.bytes())
    result = run_wsgiloop("--certfile", str(certs.certfile), "--keyfile", str(other_key))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"wsgiloop: error: --certfile {certs.certfile} with --keyfile "
                           f"{other_key}: cannot load the certificate and its key: "), line


def test_the_start_up_line_says_https(server: ServerProcess) -> None:
    assert server.url.startswith("https://"), server.log
    assert "Listening at: http://" not in server.log


def test_optional_client_certificates(certs: Certs) -> None:
    """--cert-reqs 1 (gunicorn's ssl.CERT_OPTIONAL): clients without a certificate are
    served, and one from another CA is still refused."""
    with ServerProcess(APP, "--certfile", str(certs.certfile), "--keyfile",
                       str(certs.keyfile), "--ca-certs", str(certs.ca_file),
                       "--cert-reqs", "1") as srv:
        resp = requests.get(base_url(srv) + "/environ", verify=str(certs.ca_file), timeout=10)
        assert resp.status_code == 200
        resp = requests.get(base_url(srv) + "/environ", verify=str(certs.ca_file),
                            cert=str(certs.client_pem), timeout=10)
        assert resp.status_code == 200
