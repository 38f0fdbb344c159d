"""The PROXY protocol (``--proxy-protocol``), v1 and v2, against a real server.

Headers are built by hand, from HAProxy's specification (proxy-protocol.txt): v1 is a
text line (``PROXY TCP4 src dst sport dport\\r\\n``), v2 a 16-byte binary preamble (a
12-byte signature, version/command, family/transport, address length) and the address
block.  The last tests put a real HAProxy (``/usr/sbin/haproxy``, with ``send-proxy-v2``
and ``send-proxy``) in front; CI installs it, so a missing HAProxy fails them.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ServerProcess, free_port, terminate, wait_listening

APP = "apps:combined"
HAPROXY = "/usr/sbin/haproxy"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
REQUEST = b"GET /environ HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n"


# -- building headers --------------------------------------------------------------------


def v1(src: str = "203.0.113.7", dst: str = "127.0.0.1", sport: int = 5555,
       dport: int = 80, family: str | None = None) -> bytes:
    family = family or ("TCP6" if ":" in src else "TCP4")
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def v2(command: int = 1, src: str = "203.0.113.7", dst: str = "127.0.0.1",
       sport: int = 5555, dport: int = 80, tlvs: bytes = b"",
       family_byte: int | None = None, address: bytes | None = None) -> bytes:
    """A v2 header: ``command`` 1 is PROXY, 0 LOCAL; TCP over the family of ``src``."""
    if address is None:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        address = s.packed + d.packed + struct.pack("!HH", sport, dport)
        if family_byte is None:
            family_byte = 0x11 if s.version == 4 else 0x21
    if family_byte is None:
        family_byte = 0x00
    body = address + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family_byte, len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


# -- the server and the exchange ---------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    # Trusts 127.0.0.1 (the default --forwarded-allow-ips): every test connection.
    with ServerProcess(APP, "--proxy-protocol", "--header-timeout", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def untrusting() -> Iterator[ServerProcess]:
    with ServerProcess(APP, "--proxy-protocol", "--forwarded-allow-ips", "10.9.9.9") as srv:
        yield srv


def exchange(server: ServerProcess, *pieces: bytes, pause: float = 0.0,
             timeout: float = 8.0) -> bytes:
    """Send ``pieces`` (as separate segments, ``pause`` apart) and read until EOF."""
    with server.connect(timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
            if pause:
                time.sleep(pause)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"the server did not close within {timeout}s: {b''.join(chunks)!r}")
    return b"".join(chunks)


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of every response in ``data`` (Content-Length framed)."""
    found = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        found.append((status, rest[:length]))
        data = rest[length:]
    return found


def environ_from(data: bytes) -> dict:
    (status, body), = responses(data)
    assert status == 200, data
    return json.loads(body)


def assert_rejected(data: bytes) -> None:
    """One 400 response with Connection: close, then EOF (exchange() read to EOF)."""
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"\r\nConnection: close\r\n" in data.split(b"\r\n\r\n")[0] + b"\r\n"
    assert len(responses(data)) == 1, data


# -- v1 ----------------------------------------------------------------------------------


def test_v1_tcp4_sets_remote_addr(server: ServerProcess) -> None:
    environ = environ_from(exchange(server, v1() + REQUEST))
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["REMOTE_PORT"] == "5555"
    assert environ["HTTP_HOST"] == "example.org"
    assert environ["wsgi.url_scheme"] == "http"


def test_v1_exact_header_from_the_brief(server: ServerProcess) -> None:
    data = exchange(server, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + REQUEST)
    assert environ_from(data)["REMOTE_ADDR"] == "203.0.113.7"


def test_v1_tcp6_sets_remote_addr(server: ServerProcess) -> None:
    environ = environ_from(exchange(server, v1("2001:db8::7", "2001:db8::1", 40000, 443)
                                    + REQUEST))
    assert environ["REMOTE_ADDR"] == "2001:db8::7"
    assert environ["REMOTE_PORT"] == "40000"


def test_v1_unknown_keeps_the_peer(server: ServerProcess) -> None:
    for header in (b"PROXY UNKNOWN\r\n",
                   b"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n"):
        environ = environ_from(exchange(server, header + REQUEST))
        assert environ["REMOTE_ADDR"] == "127.0.0.1"


def test_v1_longest_header_is_accepted(server: ServerProcess) -> None:
    """107 bytes including the CRLF is the longest v1 line (the spec's worst case)."""
    src = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"
    dst = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    header = f"PROXY UNKNOWN {src} {dst} 65535 65535\r\n".encode()
    assert len(header) == 107
    assert environ_from(exchange(server, header + REQUEST))["REMOTE_ADDR"] == "127.0.0.1"
    header = v1(src, dst, 65535, 65535)
    assert len(header) == 104
    assert environ_from(exchange(server, header + REQUEST))["REMOTE_ADDR"] == src


def test_v1_header_alone_then_the_request(server: ServerProcess) -> None:
    data = exchange(server, v1(), REQUEST, pause=0.1)
    assert environ_from(data)["REMOTE_ADDR"] == "203.0.113.7"


# -- v2 ----------------------------------------------------------------------------------


def test_v2_tcp4_sets_remote_addr(server: ServerProcess) -> None:
    environ = environ_from(exchange(server, v2(src="198.51.100.20", sport=61000) + REQUEST))
    assert environ["REMOTE_ADDR"] == "198.51.100.20"
    assert environ["REMOTE_PORT"] == "61000"


def test_v2_tcp6_sets_remote_addr(server: ServerProcess) -> None:
    header = v2(src="2001:db8::42", dst="2001:db8::1", sport=1234, dport=443)
    assert header[13] == 0x21 and len(header) == 16 + 36
    environ = environ_from(exchange(server, header + REQUEST))
    assert environ["REMOTE_ADDR"] == "2001:db8::42"
    assert environ["REMOTE_PORT"] == "1234"


def test_v2_with_tlvs(server: ServerProcess) -> None:
    """TLVs after the addresses (ALPN, authority, a NOOP) are skipped by length."""
    tlvs = tlv(0x01, b"http/1.1") + tlv(0x02, b"shop.example") + tlv(0x04, b"\x00" * 5)
    environ = environ_from(exchange(server, v2(src="192.0.2.9", tlvs=tlvs) + REQUEST))
    assert environ["REMOTE_ADDR"] == "192.0.2.9"
    assert environ["PATH_INFO"] == "/environ"


def test_v2_local_keeps_the_peer(server: ServerProcess) -> None:
    for header in (v2(command=0, address=b""),  # what HAProxy's health checks send
                   v2(command=0, src="203.0.113.7")):  # LOCAL: the addresses are ignored
        environ = environ_from(exchange(server, header + REQUEST))
        assert environ["REMOTE_ADDR"] == "127.0.0.1"


def test_v2_unspec_family_keeps_the_peer(server: ServerProcess) -> None:
    environ = environ_from(exchange(server, v2(command=1, family_byte=0x00, address=b"")
                                    + REQUEST))
    assert environ["REMOTE_ADDR"] == "127.0.0.1"


# -- keep-alive and split headers --------------------------------------------------------


def test_the_address_holds_for_the_whole_connection(server: ServerProcess) -> None:
    keep = b"GET /environ?n=%d HTTP/1.1\r\nHost: example.org\r\n\r\n"
    data = exchange(server, v2(src="192.0.2.77") + keep % 1, keep % 2, REQUEST, pause=0.05)
    found = responses(data)
    assert [status for status, _ in found] == [200, 200, 200]
    assert [json.loads(body)["REMOTE_ADDR"] for _, body in found] == ["192.0.2.77"] * 3


def test_a_second_proxy_header_is_not_a_header(server: ServerProcess) -> None:
    """Only the start of the connection may carry one; later it is a bad request line."""
    keep = b"GET /environ HTTP/1.1\r\nHost: example.org\r\n\r\n"
    data = exchange(server, v1() + keep, v1(src="192.0.2.1") + REQUEST, pause=0.1)
    first, second = data.split(b"HTTP/1.1 400 ", 1)
    assert environ_from(first)["REMOTE_ADDR"] == "203.0.113.7"
    assert b"192.0.2.1" not in second


@pytest.mark.parametrize("header", [v1(), v1("2001:db8::7", "::1"), v2(),
                                    v2(src="2001:db8::99", dst="::1"), v2(command=0,
                                                                          address=b"")],
                         ids=["v1-tcp4", "v1-tcp6", "v2-tcp4", "v2-tcp6", "v2-local"])
def test_header_byte_by_byte(server: ServerProcess, header: bytes) -> None:
    pieces = [header[i:i + 1] for i in range(len(header))] + [REQUEST]
    environ = environ_from(exchange(server, *pieces, pause=0.003))
    if header.startswith(b"PROXY"):
        expected = header.split(b" ")[2].decode()
    elif header[12] & 0x0F == 0:
        expected = "127.0.0.1"
    else:
        expected = str(ipaddress.ip_address(header[16:20] if header[13] == 0x11
                                            else header[16:32]))
    assert environ["REMOTE_ADDR"] == expected


@pytest.mark.parametrize("cut", [3, 11, 12, 13, 15, 16, 20, 27, 28, 29])
def test_v2_split_at_awkward_places(server: ServerProcess, cut: int) -> None:
    """Inside the signature, inside the preamble, inside the addresses, right at the end
    of the header, and with the first request bytes in the same segment."""
    data = v2(src="192.0.2.55") + REQUEST
    environ = environ_from(exchange(server, data[:cut], data[cut:], pause=0.05))
    assert environ["REMOTE_ADDR"] == "192.0.2.55"


@pytest.mark.parametrize("cut", [1, 5, 6, 11, 25, 40, 41, 42, 43])
def test_v1_split_at_awkward_places(server: ServerProcess, cut: int) -> None:
    """Including between the header's CR and LF (41) and right after it (42)."""
    data = v1() + REQUEST
    assert len(v1()) == 42
    environ = environ_from(exchange(server, data[:cut], data[cut:], pause=0.05))
    assert environ["REMOTE_ADDR"] == "203.0.113.7"


def test_header_split_in_three_with_the_request(server: ServerProcess) -> None:
    data = v2(src="2001:db8::5", dst="::1") + REQUEST
    environ = environ_from(exchange(server, data[:10], data[10:40], data[40:60], data[60:],
                                    pause=0.05))
    assert environ["REMOTE_ADDR"] == "2001:db8::5"


# -- malformed headers -------------------------------------------------------------------


MALFORMED = {
    "no-header": REQUEST,  # the spec: never guess whether a header is present
    "lowercase": b"proxy TCP4 203.0.113.7 127.0.0.1 5555 80\r\n",
    "tcp5": b"PROXY TCP5 203.0.113.7 127.0.0.1 5555 80\r\n",
    "bad-address": b"PROXY TCP4 203.0.113.999 127.0.0.1 5555 80\r\n",
    "family-mismatch": b"PROXY TCP4 2001:db8::7 127.0.0.1 5555 80\r\n",
    "tcp6-with-ipv4": b"PROXY TCP6 203.0.113.7 ::1 5555 80\r\n",
    "missing-field": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555\r\n",
    "extra-field": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80 9\r\n",
    "two-spaces": b"PROXY TCP4  203.0.113.7 127.0.0.1 5555 80\r\n",
    "port-not-a-number": b"PROXY TCP4 203.0.113.7 127.0.0.1 http 80\r\n",
    "port-too-big": b"PROXY TCP4 203.0.113.7 127.0.0.1 65536 80\r\n",
    "negative-port": b"PROXY TCP4 203.0.113.7 127.0.0.1 -1 80\r\n",
    "ipv4-leading-zero": b"PROXY TCP4 203.0.113.007 127.0.0.1 5555 80\r\n",
    "too-long": b"PROXY UNKNOWN " + b"f" * 120 + b"\r\n",
    "lf-only": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\n",
    "v2-version-1": V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),
    "v2-version-3": V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),
    "v2-command-2": V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),
    "v2-bad-signature": b"\r\n\r\n\x00\r\nQUIT!" + b"\x21\x11\x00\x0c" + bytes(12),
    # The rest of the spec's MUSTs (see the report): invalid values in fields the
    # parser does not look at today.
    "dst-port-not-a-number": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 http\r\n",
    "dst-port-too-big": b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 99999\r\n",
    "port-leading-zero": b"PROXY TCP4 203.0.113.7 127.0.0.1 05555 80\r\n",
    "v2-family-4": v2(family_byte=0x41, address=bytes(12)),
    "v2-transport-3": v2(family_byte=0x13, address=bytes(12)),
    "v2-tcp4-short-address": v2(family_byte=0x11, address=bytes(4)),
    "v2-tcp6-short-address": v2(family_byte=0x21, address=bytes(12)),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_header_gets_400_and_close(server: ServerProcess, name: str) -> None:
    data = exchange(server, MALFORMED[name] + REQUEST)
    assert_rejected(data)
    assert b"203.0.113.7" not in data


def test_server_survives_malformed_headers(server: ServerProcess) -> None:
    for name in ("bad-address", "v2-version-1", "too-long"):
        assert_rejected(exchange(server, MALFORMED[name] + REQUEST))
    assert environ_from(exchange(server, v1() + REQUEST))["REMOTE_ADDR"] == "203.0.113.7"
    assert server.proc.poll() is None


def test_incomplete_header_times_out(server: ServerProcess) -> None:
    """Half a header and then nothing: closed by --header-timeout (2 s here)."""
    started = time.monotonic()
    data = exchange(server, b"PROXY TCP4 203.0.113.7 ", timeout=8)
    assert time.monotonic() - started < 6
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data


def test_incomplete_v2_header_times_out(server: ServerProcess) -> None:
    started = time.monotonic()
    data = exchange(server, v2()[:20], timeout=8)
    assert time.monotonic() - started < 6
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data


# -- untrusted peers ---------------------------------------------------------------------


@pytest.mark.parametrize("header", [v1(), b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"],
                         ids=["built", "literal"])
def test_untrusted_peer_cannot_send_a_proxy_header(untrusting: ServerProcess,
                                                   header: bytes) -> None:
    """From a peer outside --forwarded-allow-ips no header is expected, so "PROXY ..." is
    the request line -- not a valid one."""
    data = exchange(untrusting, header + REQUEST)
    assert_rejected(data)
    assert b"203.0.113.7" not in data


def test_untrusted_peer_v2_header_is_rejected(untrusting: ServerProcess) -> None:
    data = exchange(untrusting, v2() + REQUEST)
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"203.0.113.7" not in data


def test_untrusted_peer_is_served_without_a_header(untrusting: ServerProcess) -> None:
    environ = environ_from(exchange(untrusting, REQUEST))
    assert environ["REMOTE_ADDR"] == "127.0.0.1"


# -- a separate list for PROXY headers (gunicorn's proxy_allow_ips) ---------------------


def test_proxy_allow_from_is_its_own_list() -> None:
    """--proxy-allow-from names the PROXY senders apart from the forwarding-header
    proxies: here 127.0.0.1 may send a PROXY header but its X-Forwarded-For is ignored."""
    with ServerProcess(APP, "--proxy-protocol", "--proxy-allow-from", "127.0.0.1",
                       "--forwarded-allow-ips", "10.9.9.9") as srv:
        forwarded = REQUEST.replace(b"Connection: close\r\n",
                                    b"Connection: close\r\nX-Forwarded-For: 198.51.100.1\r\n")
        environ = environ_from(exchange(srv, v1() + forwarded))
        assert environ["REMOTE_ADDR"] == "203.0.113.7"


def test_proxy_allow_from_leaves_out_the_forwarding_proxies() -> None:
    """A peer trusted for X-Forwarded-* only cannot send a PROXY header."""
    with ServerProcess(APP, "--proxy-protocol", "--proxy-allow-from", "10.9.9.9",
                       "--forwarded-allow-ips", "127.0.0.1") as srv:
        assert_rejected(exchange(srv, v1() + REQUEST))
        assert environ_from(exchange(srv, REQUEST))["REMOTE_ADDR"] == "127.0.0.1"


# -- a real HAProxy in front -------------------------------------------------------------


class HAProxy:
    """HAProxy in the foreground: ``v2_port`` (mode http, ``send-proxy-v2``, health
    checks) and ``v1_port`` (mode tcp, ``send-proxy``) in front of ``backend_port``."""

    def __init__(self, directory: Path, backend_port: int) -> None:
        if not os.path.exists(HAPROXY):
            pytest.fail(f"HAProxy is required for this test but {HAPROXY} is missing: "
                        "run `apt-get install haproxy` (CI's setup installs it)",
                        pytrace=False)
        self.v2_port, self.v1_port = free_port(), free_port()
        self.conf = directory / "haproxy.cfg"
        self.conf.write_text(f"""
global
    maxconn 200

defaults
    timeout connect 5s
    timeout client 20s
    timeout server 20s

frontend fe_v2
    mode http
    bind 127.0.0.1:{self.v2_port}
    default_backend be_v2

backend be_v2
    mode http
    option httpchk GET /healthz
    server app 127.0.0.1:{backend_port} send-proxy-v2 check inter 100ms fall 1 rise 1

frontend fe_v1
    mode tcp
    bind 127.0.0.1:{self.v1_port}
    default_backend be_v1

backend be_v1
    mode tcp
    server app 127.0.0.1:{backend_port} send-proxy
""")
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.conf)], capture_output=True,
                               text=True, timeout=20)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = directory / "haproxy.out"
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(self.conf)],
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        wait_listening(self.proc, [self.v2_port, self.v1_port], "haproxy",
                       details=self.output, stop=self.stop)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.proc)
        self._log_file.close()


@pytest.fixture(scope="module")
def logged_server() -> Iterator[ServerProcess]:
    with ServerProcess(APP, "--proxy-protocol", "--access-log", "-",
                       "--access-log-format", "%(h)s %(U)s %(s)s") as srv:
        yield srv


@pytest.fixture(scope="module")
def haproxy(logged_server: ServerProcess,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    proxy = HAProxy(tmp_path_factory.mktemp("haproxy"), logged_server.port)
    try:
        yield proxy
    finally:
        proxy.stop()


def environ_via(port: int, source: str, count: int = 1) -> list[dict]:
    """``count`` requests on one keep-alive connection from ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0))
    try:
        found = []
        for i in range(count):
            conn.request("GET", f"/environ?i={i}")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (resp.status, body)
            found.append(json.loads(body))
        return found
    finally:
        conn.close()


def test_behind_real_haproxy_send_proxy_v2(haproxy: HAProxy,
                                           logged_server: ServerProcess) -> None:
    """Each client's address arrives through HAProxy's v2 header -- on keep-alive
    connections, and for two clients at once -- and HAProxy's health checks (v2 LOCAL)
    keep finding the server up (with ``fall 1`` a single failed check would turn the
    next requests into 503s)."""
    first = environ_via(haproxy.v2_port, "127.0.0.2", count=3)
    assert [e["REMOTE_ADDR"] for e in first] == ["127.0.0.2"] * 3
    second = environ_via(haproxy.v2_port, "127.0.0.3", count=2)
    assert [e["REMOTE_ADDR"] for e in second] == ["127.0.0.3"] * 2
    time.sleep(0.6)  # several health checks
    again = environ_via(haproxy.v2_port, "127.0.0.4")
    assert again[0]["REMOTE_ADDR"] == "127.0.0.4"
    access = logged_server.stdout
    assert re.search(r"^127\.0\.0\.1 /healthz 200$", access, re.M), access
    assert re.search(r"^127\.0\.0\.2 /environ 200$", access, re.M), access
    assert "Server app is DOWN" not in haproxy.output(), haproxy.output()


def test_behind_real_haproxy_send_proxy_v1(haproxy: HAProxy) -> None:
    found = environ_via(haproxy.v1_port, "127.0.0.5", count=2)
    assert [e["REMOTE_ADDR"] for e in found] == ["127.0.0.5"] * 2
    assert found[0]["REMOTE_PORT"] == found[1]["REMOTE_PORT"]  # one connection
