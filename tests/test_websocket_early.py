"""WebSocket clients that do not wait for the handshake's answer, over real sockets and
with both request parsers.

RFC 6455 (4.1) has a client wait for the ``101``, but clients that send their first
frames right behind the handshake request exist, and servers (Tornado, websockets,
uvicorn) take them.  Those frames -- in the request's own packet, split between it and
later ones, several, or sent while the handler is still busy with the handshake -- reach
the handler after ``open``.  After a refused upgrade (a bad handshake, or a path with no
WebSocketHandler) they are never read as HTTP: the refusal says ``Connection: close``
and the connection ends, so a request hidden in them is not answered.
"""

from __future__ import annotations

import http.client
import json
import socket

import pytest
from parser_backends import BACKEND_NAMES
from support import ServerProcess, raw_request
from wsframes import BINARY, CLOSE, PING, PONG, TEXT, RawClient, close_frame, frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
#: a request hidden where a refused client's frames would be
SMUGGLED = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def server(request):
    with ServerProcess("websocket_apps:application", "--parser", request.param) as server:
        yield server
    assert "Traceback" not in server.log, server.log


def handshake(server, path="/echo", **fields: str | None) -> bytes:
    base = {"Host": f"{server.host}:{server.port}", "Upgrade": "websocket",
            "Connection": "Upgrade", "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    base.update({name.replace("_", "-"): value for name, value in fields.items()})
    lines = "".join(f"{k}: {v}\r\n" for k, v in base.items() if v is not None)
    return f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode()


def events(server) -> list[dict]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", "/events")
        return json.loads(conn.getresponse().read())["events"]
    finally:
        conn.close()


def close_cleanly(client: RawClient) -> None:
    client.send(close_frame(1000))
    assert client.read_message() == (CLOSE, b"\x03\xe8")
    client.expect_eof()
    client.close()


# -- accepted: the frames are the WebSocket's first input --------------------------------------

def test_a_frame_in_the_handshakes_packet_is_echoed(server):
    client = RawClient(server.host, server.port, "/echo", early=frame(TEXT, b"early"))
    assert client.status == 101
    assert client.read_message() == (TEXT, b"early")
    client.send(frame(TEXT, b"later"))  # and the connection goes on as usual
    assert client.read_message() == (TEXT, b"later")
    close_cleanly(client)


def test_the_frames_come_after_open(server):
    """/protocols writes a message in open(); an async open() (/async) is awaited
    before the frames that came with the handshake are handed on, in order."""
    client = RawClient(server.host, server.port, "/protocols", early=frame(TEXT, b"early"))
    assert client.read_message() == (TEXT, b"protocol=None")
    assert client.read_message() == (TEXT, b"early")
    close_cleanly(client)
    client = RawClient(server.host, server.port, "/async",
                       early=b"".join(frame(TEXT, b"%d" % i) for i in range(50)))
    assert [client.read_message()[1] for _ in range(50)] == [b"%d" % i for i in range(50)]
    close_cleanly(client)


def test_several_frames_of_every_kind(server):
    early = b"".join([frame(TEXT, b"one"), frame(PING, b"are you there"),
                      frame(BINARY, bytes(range(256)) * 40),  # 10 KiB: a 16-bit length
                      frame(TEXT, b"frag", fin=False), frame(0, b"mented"),
                      frame(TEXT, "ünïcode".encode())])
    client = RawClient(server.host, server.port, "/echo", early=early)
    assert client.read_frame() == (TEXT, True, 0, b"one")
    assert client.read_frame() == (PONG, True, 0, b"are you there")
    assert client.read_message() == (BINARY, bytes(range(256)) * 40)
    assert client.read_message() == (TEXT, b"fragmented")
    assert client.read_message() == (TEXT, "ünïcode".encode())
    close_cleanly(client)


@pytest.mark.parametrize("cut", [1, 2, 6, 7, 3000])
def test_a_frame_split_between_the_handshake_and_later_packets(server, cut):
    """The handshake's packet ends inside the frame (in its header, its mask, its
    payload); the rest is sent once the 101 is read, so it comes in a later read."""
    whole = frame(BINARY, b"s" * 5000) + frame(TEXT, b"next")
    client = RawClient(server.host, server.port, "/echo", early=whole[:cut])
    assert client.status == 101
    client.send(whole[cut:])
    assert client.read_message() == (BINARY, b"s" * 5000)
    assert client.read_message() == (TEXT, b"next")
    close_cleanly(client)


def test_a_close_frame_with_the_handshake(server):
    client = RawClient(server.host, server.port, "/echo/closing",
                       early=frame(TEXT, b"bye") + close_frame(4001, b"done"))
    assert client.read_message() == (TEXT, b"bye")
    assert client.read_message() == (CLOSE, b"\x0f\xa1")
    client.expect_eof()
    client.close()
    assert {"close": "/echo/closing", "code": 4001, "reason": "done"} in events(server)


def test_a_protocol_error_with_the_handshake_closes_with_1002(server):
    client = RawClient(server.host, server.port, "/echo",
                       early=frame(TEXT, b"unmasked", mask=False))
    assert client.status == 101
    client.expect_close(1002)
    client.close()


def test_frames_sent_while_the_handler_is_busy_with_the_handshake(server):
    """/slow-start awaits in prepare(): the frames wait on the HTTP side, which stops
    reading past its buffer limit (64 KiB); the WebSocket takes them over and reads on."""
    frames = [frame(BINARY, bytes([i]) * 30000) for i in range(6)]  # 180 KB
    client = RawClient(server.host, server.port, "/slow-start/busy", timeout=10,
                       early=b"".join(frames))
    for i in range(6):
        assert client.read_message() == (BINARY, bytes([i]) * 30000)
    close_cleanly(client)


@pytest.mark.parametrize("path", ["/echo/eof", "/slow-start/eof", "/slow-async/eof"])
def test_a_client_that_stops_sending_during_the_handshake_is_answered_then_closed(server,
                                                                                  path):
    """Its frames and its end of input came with the handshake, possibly while the handler
    was busy (the HTTP side saw them): the 101 and the answers to the frames leave, after
    an async ``open`` and ``on_message`` are done, and then the connection closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(handshake(server, path) + frame(TEXT, b"and gone")
                     + frame(BINARY, b"\x00\x01"))
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), received
    assert rest == frame(TEXT, b"and gone", mask=False) + frame(BINARY, b"\x00\x01", mask=False)
    seen = [e for e in events(server) if path in (e.get("open"), e.get("close"))]
    assert [next(iter(e)) for e in seen][-2:] == ["open", "close"], seen
    assert seen[-1]["code"] is None  # gone without a close frame


# -- refused: the connection ends with the refusal ----------------------------------------------

@pytest.mark.parametrize("path, fields, status", [
    ("/echo", {"Sec-WebSocket-Version": "8"}, 426),
    ("/echo", {"Sec-WebSocket-Key": None}, 400),
    ("/echo", {"Origin": "http://evil.example"}, 403),
    ("/nowhere", {}, 404),                           # not a WebSocket route
    ("/events", {}, None),                           # a handler's ordinary answer: 200
])
def test_nothing_after_a_refused_upgrade_is_read_as_http(server, path, fields, status):
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        data = raw_request(sock, handshake(server, path, **fields) + SMUGGLED)
    head = data.partition(b"\r\n\r\n")[0]
    if status is None:
        # an answer, not a refusal: the connection stays HTTP, as for a WSGI app
        assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1 200 ") == 2
        return
    assert head.startswith(b"HTTP/1.1 %d " % status), data
    assert b"\r\nConnection: close" in head
    assert data.count(b"HTTP/1.1 ") == 1, data  # the hidden request got no answer


def test_a_post_to_a_websocket_handler_closes_too(server):
    request = (f"POST /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
               "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        data = raw_request(sock, request + SMUGGLED)
    assert data.startswith(b"HTTP/1.1 405 ") and data.count(b"HTTP/1.1 ") == 1, data


def test_a_refusal_on_the_flat_path_closes(server):
    """Without ``Connection: Upgrade`` (refused: 400) the handshake is a plainly clean
    request, which a read of its own takes past the parser's events; the refusal closes
    the connection there too, before the client's next packet is read."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(handshake(server, Connection=None))
        sock.settimeout(5)
        data = b""
        while b"</html>" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 ") and b"\r\nConnection: close\r\n" in data
        try:
            sock.sendall(SMUGGLED)
        except OSError:
            pass  # closed already
        rest = b""
        try:
            while chunk := sock.recv(65536):
                rest += chunk
        except ConnectionResetError:
            pass
        assert rest == b"", rest
