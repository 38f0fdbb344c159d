"""WebSocketHandler end to end over real sockets: third-party clients (``websockets``,
``websocket-client``), the handshake's refusals, async callbacks, errors, pings,
back-pressure, the graceful stop (1001), ``--worker-connections``, and a WSGI app that
gets an ``Upgrade: websocket`` request.  Frame-level conformance is in
``test_websocket_conformance.py``; frames sent with the handshake request, and what
follows a refused one, in ``test_websocket_early.py``."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import struct
import threading
import time

import pytest
import websocket as websocket_client  # websocket-client
import websockets
from support import ServerProcess
from websockets.exceptions import ConnectionClosedError
from webtest import TestApp
from wsframes import BINARY, CLOSE, PING, PONG, TEXT, RawClient, close_frame, frame

from wsgiloop.web import Application, WebSocketHandler


@pytest.fixture(scope="module")
def server():
    with ServerProcess("websocket_apps:application", "--access-log", "-") as server:
        yield server
    # the only tracebacks are those of the handler that fails on purpose
    assert server.log.count("Traceback") == server.log.count("RuntimeError: boom"), server.log


def http_get(server, path, method="GET", body=None, headers=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def events(server):
    return json.loads(http_get(server, "/events")[2])["events"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


# -- third-party clients -----------------------------------------------------------------------

def test_websockets_library_echo_ping_and_close(server):
    async def session():
        uri = f"ws://{server.host}:{server.port}/echo/lib"
        async with websockets.connect(uri, compression=None) as ws:
            await ws.send("héllo ✓")
            assert await ws.recv() == "héllo ✓"
            await ws.send(b"\x00\xff" * 1000)
            assert await ws.recv() == b"\x00\xff" * 1000
            await ws.send(["frag", "mented"])  # sent as two frames
            assert await ws.recv() == "fragmented"
            await asyncio.wait_for(await ws.ping(b"are you there"), 5)
            await ws.close(4000, "done")
        return ws.close_code

    assert run(session()) == 4000
    assert {"close": "/echo/lib", "code": 4000, "reason": "done"} in events(server)


def test_websockets_library_with_permessage_deflate(server):
    async def session():
        uri = f"ws://{server.host}:{server.port}/deflate"
        async with websockets.connect(uri) as ws:  # offers permessage-deflate
            extensions = ws.response.headers["Sec-WebSocket-Extensions"]
            for i in range(20):
                text = f"compressible {i} " * 200
                await ws.send(text)
                assert await ws.recv() == text
            await ws.send(bytes(range(256)) * 100)
            assert await ws.recv() == bytes(range(256)) * 100
        return extensions

    assert run(session()).startswith("permessage-deflate")


@pytest.mark.parametrize("deflate", [False, True])
def test_messages_of_megabytes(server, deflate):
    import random

    text = "".join(random.choice("aé€\U0001F600 ") for _ in range(1 << 19))  # ~1.3 MiB UTF-8
    blob = random.randbytes(3 << 20)

    async def session():
        uri = f"ws://{server.host}:{server.port}/large" + ("?deflate=1" if deflate else "")
        async with websockets.connect(uri, max_size=None,
                                      compression="deflate" if deflate else None) as ws:
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(blob)
            assert await ws.recv() == blob
            await ws.send([blob[:1 << 20], blob[1 << 20:]])  # in two fragments
            assert await ws.recv() == blob
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    assert (run(session()) is not None) == deflate


def test_websocket_client_library(server):
    ws = websocket_client.create_connection(f"ws://{server.host}:{server.port}/async",
                                            timeout=5)
    try:
        for i in range(50):
            ws.send(f"message {i}")
        assert [ws.recv() for _ in range(50)] == [f"message {i}" for i in range(50)]
        ws.send_binary(b"\x01\x02")
        assert ws.recv() == b"\x01\x02"
        ws.ping(b"keepalive")
        ws.send("after ping")
        assert ws.recv() == "after ping"
    finally:
        ws.close()


def test_messages_from_many_clients_are_broadcast(server):
    clients = [RawClient(server.host, server.port, "/echo/room") for _ in range(20)]
    try:
        status, _, body = http_get(server, "/broadcast", "POST", body=b"to everyone")
        assert status == 200 and json.loads(body)["sent"] >= 20
        for client in clients:
            assert client.read_message() == (TEXT, b"to everyone")
    finally:
        for client in clients:
            client.close()


# -- the handshake -----------------------------------------------------------------------------

def raw_handshake(server, headers, method="GET", path="/echo"):
    base = {"Host": f"{server.host}:{server.port}", "Upgrade": "websocket",
            "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13"}
    base.update(headers)
    fields = "".join(f"{k}: {v}\r\n" for k, v in base.items() if v is not None)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\n{fields}\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")


def test_the_handshake_answer_is_rfc_6455s_example(server):
    answer = raw_handshake(server, {})
    assert answer.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    # RFC 6455 section 1.3: this key gives this accept value
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer
    assert "Upgrade: websocket\r\n" in answer and "Connection: Upgrade\r\n" in answer


@pytest.mark.parametrize("headers, status", [
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Sec-WebSocket-Version": None}, 426),
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Key": "too-short"}, 400),
    ({"Upgrade": None}, 400),
    ({"Upgrade": "h2c"}, 400),
    ({"Connection": "keep-alive"}, 400),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
])
def test_handshake_refusals(server, headers, status):
    answer = raw_handshake(server, headers)
    assert answer.startswith(f"HTTP/1.1 {status} "), answer
    if status == 426:
        assert "Sec-WebSocket-Version: 13\r\n" in answer


def test_same_origin_is_accepted(server):
    answer = raw_handshake(server, {"Origin": f"http://{server.host}:{server.port}"})
    assert answer.startswith("HTTP/1.1 101 ")


def test_post_to_a_websocket_handler_is_405(server):
    assert raw_handshake(server, {"Content-Length": "0"}, method="POST").startswith(
        "HTTP/1.1 405 ")


def test_subprotocol_selection(server):
    client = RawClient(server.host, server.port, "/protocols",
                       headers={"Sec-WebSocket-Protocol": "chat.v1, chat.v2"})
    assert client.headers["sec-websocket-protocol"] == "chat.v2"
    assert client.read_message() == (TEXT, b"protocol=chat.v2")
    client.close()
    client = RawClient(server.host, server.port, "/protocols")
    assert "sec-websocket-protocol" not in client.headers
    assert client.read_message() == (TEXT, b"protocol=None")
    client.close()


def test_the_access_log_shows_101(server):
    client = RawClient(server.host, server.port, "/echo/logged")
    client.close()
    deadline = time.monotonic() + 5
    while '"GET /echo/logged HTTP/1.1" 101 ' not in server.stdout:
        assert time.monotonic() < deadline, server.stdout
        time.sleep(0.02)


def test_a_wsgi_app_answers_an_upgrade_request_normally():
    with ServerProcess("websocket_apps:wsgi_app") as server:
        answer = raw_handshake(server, {})
        assert answer.startswith("HTTP/1.1 200 OK\r\n"), answer
        # the connection is still HTTP: a second request on it is answered too
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            request = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            sock.sendall(request + request)
            data = b""
            while data.count(b"plain websocket") < 2:
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
            assert data.count(b"HTTP/1.1 200 OK") == 2 and b" 101 " not in data


def test_in_process_calls_get_501():
    class Echo(WebSocketHandler):
        pass

    app = TestApp(Application([(r"/ws", Echo)]))
    response = app.get("/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                       "Sec-WebSocket-Version": "13"}, status=501)
    assert response.status_int == 501


# -- callbacks ---------------------------------------------------------------------------------

def test_async_open_and_on_message_keep_the_order(server):
    client = RawClient(server.host, server.port, "/async")
    try:
        # sent before the async open() finished: they wait, and come back in order
        client.send(b"".join(frame(TEXT, str(i).encode()) for i in range(100)))
        assert [client.read_message()[1] for _ in range(100)] == [
            str(i).encode() for i in range(100)]
    finally:
        client.close()


def test_an_error_in_on_message_closes_with_1011(server):
    client = RawClient(server.host, server.port, "/failing")
    client.send(frame(TEXT, b"anything"))
    client.expect_close(1011)
    server.wait_for_log(r"error in Failing\.on_message")


def test_no_callback_runs_after_one_failed(server):
    """Frames that came with the one whose callback failed are not handed on."""
    http_get(server, "/events", "DELETE")
    client = RawClient(server.host, server.port, "/failing")
    client.send_frames(frame(TEXT, b"anything"), frame(PONG, b"late"))
    client.expect_close(1011)
    http_get(server, "/events")  # the close's on_close is in, and any pong before it
    assert not any("pong" in e for e in events(server)), events(server)


def test_the_server_pings_and_a_silent_client_is_dropped(server):
    answering = RawClient(server.host, server.port, "/ping")
    silent = RawClient(server.host, server.port, "/ping")
    try:
        for _ in range(4):  # answered pings keep the connection open
            opcode, _, _, payload = answering.read_frame()
            assert opcode == PING
            answering.send(frame(PONG, payload))
        answering.send(frame(TEXT, b"still open"))
        assert answering.read_message() == (TEXT, b"still open")
        silent.sock.settimeout(10)
        seen = []
        while True:  # pings, never answered: then the server gives up and closes
            data = silent.sock.recv(65536)
            if not data:
                break
            seen.append(data[0] & 0x0F)
        assert seen and set(seen) == {PING}
    finally:
        answering.close()
        silent.close()


# -- back-pressure -----------------------------------------------------------------------------

def test_a_client_that_reads_nothing_is_closed_not_buffered(server):
    client = RawClient(server.host, server.port, "/flood")
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client.send(frame(TEXT, b"flood"))
    deadline = time.monotonic() + 10
    flood = None
    while flood is None and time.monotonic() < deadline:
        flood = next((e["flood"] for e in events(server) if "flood" in e), None)
        time.sleep(0.05)
    # 64 KiB messages, queued without waiting: the connection was dropped past the
    # 1 MiB limit (plus what the kernel's buffers took), not after all 100,000
    assert flood is not None and flood < 200, flood
    client.sock.settimeout(5)
    with pytest.raises((ConnectionError, OSError, AssertionError)):
        while True:
            client.read_frame()
    client.close()


def test_tiny_messages_to_a_client_that_reads_nothing_are_bounded_too(server):
    """What a queued message costs besides its bytes (its Future, its frame, the queue's
    entries: some 190 bytes) counts against websocket_max_write_buffer: 1-byte messages
    used to queue 349,000 messages, 90 MiB, for a 1 MiB limit."""
    client = RawClient(server.host, server.port, "/flood")
    client.send(frame(TEXT, b"flood-tiny"))
    deadline = time.monotonic() + 10
    written = None
    while written is None and time.monotonic() < deadline:
        written = next((e["flood-tiny"] for e in events(server) if "flood-tiny" in e), None)
        time.sleep(0.05)
    assert written is not None and written < (1 << 20) // 150, written
    client.close()


def test_a_client_that_closes_and_reads_nothing_is_not_kept(server):
    """The client's close frame comes while echoes wait for it to read: the server
    answers, waits a moment for the flush, and closes anyway (the connection was kept
    for good: a close after the flush that never came)."""
    http_get(server, "/events", "DELETE")
    client = RawClient(server.host, server.port, "/large")
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # an echo of 12 MiB: more than the kernel's buffers take, less than /large's limit
    client.send_frames(frame(BINARY, b"x" * (12 << 20)), close_frame(1000))
    deadline = time.monotonic() + 15
    while not any(e.get("close") == "/large" for e in events(server)):
        assert time.monotonic() < deadline, "on_close did not run"
        time.sleep(0.1)
    client.close()


def test_pings_from_a_client_that_reads_no_pongs_are_bounded(server):
    client = RawClient(server.host, server.port, "/echo")
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    burst = frame(PING, b"p" * 125) * 1000
    sent = 0
    with pytest.raises(OSError):  # the server drops the connection: a reset
        while sent < 200:  # 200,000 pings: 25 MiB of pongs if all were queued
            client.send(burst)
            sent += 1
        client.sock.settimeout(5)
        while client.sock.recv(65536):
            pass
    assert sent < 200
    client.close()


def test_empty_pings_from_a_client_that_reads_no_pongs_are_bounded_in_memory():
    """Pongs of empty pings are 2 bytes each: counted by their bytes alone, a client that
    reads nothing could queue 500,000 of them (some 30 MiB) before the 1 MiB limit."""
    with ServerProcess("websocket_apps:application") as server:
        def peak():
            return json.loads(http_get(server, "/memory")[2])["peak"]

        before = peak()
        client = RawClient(server.host, server.port, "/echo")
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        burst = frame(PING) * 10_000
        with pytest.raises(OSError):  # the server drops the connection: a reset
            for _ in range(400):  # 4,000,000 pings
                client.send(burst)
            client.sock.settimeout(5)
            while client.sock.recv(65536):
                pass
        client.close()
        assert peak() - before < 8 << 20, (before, peak())


def test_awaiting_write_message_goes_at_the_clients_pace(server):
    client = RawClient(server.host, server.port, "/flood")
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client.send(frame(TEXT, b"paced 200"))  # 12.5 MiB, far over the write buffer limit
    received = 0
    for i in range(200):
        opcode, payload = client.read_message()
        assert opcode == BINARY and len(payload) == 65536
        received += 1
        if i % 50 == 0:
            time.sleep(0.2)  # a slow reader: the writer waits, nothing is dropped
    assert client.read_message() == (TEXT, b"done")
    assert {"paced": 200} in events(server)
    client.close()


# -- the worker: graceful stop and --worker-connections ----------------------------------------

def test_a_graceful_stop_closes_websockets_with_1001():
    server = ServerProcess("websocket_apps:application", "--graceful-timeout", "30")
    with server:
        clients = [RawClient(server.host, server.port, "/echo") for _ in range(3)]
        stopper = threading.Thread(target=server.stop)
        started = time.monotonic()
        stopper.start()
        for client in clients:
            opcode, _, _, payload = client.read_frame()
            assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1001
            client.send(close_frame(1001))
            client.sock.settimeout(10)
            assert client.sock.recv(10) == b""
        stopper.join(30)
        assert server.proc.returncode == 0, server.log
    assert "graceful timeout" not in server.log, server.log
    assert time.monotonic() - started < 25  # not the 30 s graceful timeout


def test_websockets_count_for_worker_connections():
    with ServerProcess("websocket_apps:application", "--worker-connections", "2") as server:
        held = [RawClient(server.host, server.port, "/echo") for _ in range(2)]
        waiting = socket.create_connection((server.host, server.port), timeout=10)
        waiting.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        waiting.settimeout(1.0)
        with pytest.raises(TimeoutError):
            waiting.recv(65536)  # not accepted while two WebSockets are open
        held[0].send(close_frame(1000))
        assert held[0].read_frame()[0] == CLOSE
        waiting.settimeout(10)
        assert waiting.recv(65536).startswith(b"HTTP/1.1 200 ")
        for sock in [waiting] + [c.sock for c in held]:
            sock.close()


def test_the_close_is_seen_by_a_websockets_client_on_stop():
    async def session(server, closed):
        uri = f"ws://{server.host}:{server.port}/echo"
        async with websockets.connect(uri) as ws:
            await ws.send("x")
            await ws.recv()
            closed.set()
            try:
                await ws.recv()
            except websockets.ConnectionClosedOK as exc:
                return exc.rcvd.code
            except ConnectionClosedError as exc:
                return ("error", exc.rcvd)

    with ServerProcess("websocket_apps:application") as server:
        ready = threading.Event()
        threading.Thread(target=lambda: (ready.wait(10), server.stop())).start()
        assert run(session(server, ready)) == 1001


def test_wss_over_tls(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    keyfile.write_bytes(cert.private_key_pem.bytes())
    context = ssl.create_default_context()
    ca.configure_trust(context)

    async def session(server):
        uri = f"wss://{server.host}:{server.port}/deflate"
        async with websockets.connect(uri, ssl=context) as ws:
            for size in (10, 70_000 // 2, 65_536):
                await ws.send(b"t" * size)
                assert await ws.recv() == b"t" * size
            await ws.send("über TLS")
            return await ws.recv()

    with ServerProcess("websocket_apps:application", "--certfile", str(certfile),
                       "--keyfile", str(keyfile)) as server:
        assert run(session(server)) == "über TLS"


def test_http_timeouts_do_not_apply_to_an_open_websocket():
    """Idle longer than the keep-alive, head, body and send timeouts: still open."""
    with ServerProcess("websocket_apps:application", "--keep-alive", "0.5",
                       "--header-timeout", "0.5", "--body-timeout", "0.5",
                       "--send-timeout", "0.5") as server:
        client = RawClient(server.host, server.port, "/echo")
        try:
            time.sleep(2)
            client.send(frame(TEXT, b"still here"))
            assert client.read_message() == (TEXT, b"still here")
        finally:
            client.close()
