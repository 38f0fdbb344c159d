"""One worker holding 5,000 WebSockets broadcasts to all of them: every client gets the
message, and the worker's memory stays within a bound per connection.  (The figures --
RSS, time -- are printed by ``bench/websocket.py``; this test only checks the outcome.)"""

from __future__ import annotations

import base64
import os
import resource
import selectors
import socket

import pytest
from support import ServerProcess, rss_mb
from wsframes import TEXT, frame

CLIENTS = 5000


def open_websocket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /echo/fanout HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # the server sends nothing after the head
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def test_a_broadcast_reaches_5000_websockets_of_one_worker():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < CLIENTS + 500:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard}: 5,000 clients need {CLIENTS + 500}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks: list[socket.socket] = []
    with ServerProcess("websocket_apps:application", "--backlog", "4096",
                       "--worker-connections", str(CLIENTS + 100)) as server:
        try:
            idle = rss_mb(server.worker_pid)
            socks = [open_websocket(server.port) for _ in range(CLIENTS)]
            held = rss_mb(server.worker_pid)
            # ~10 KiB a WebSocket today; four times that would be a regression
            assert (held - idle) * 1024 / CLIENTS < 40, (idle, held)

            message = b"to all 5,000"
            expected = frame(TEXT, message, mask=False)
            with socket.create_connection((server.host, server.port), timeout=30) as http:
                http.sendall(b"POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: "
                             + str(len(message)).encode() + b"\r\n\r\n" + message)
                assert http.recv(4096).startswith(b"HTTP/1.1 200 ")
            selector = selectors.DefaultSelector()
            received = {}
            for sock in socks:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
                received[sock] = b""
            complete = 0
            while complete < CLIENTS:
                events = selector.select(30)
                assert events, f"{CLIENTS - complete} clients got nothing"
                for key, _ in events:
                    data = received[key.fileobj] + key.fileobj.recv(4096)
                    received[key.fileobj] = data
                    if len(data) >= len(expected):
                        assert data == expected, data
                        selector.unregister(key.fileobj)
                        complete += 1
            selector.close()
        finally:
            for sock in socks:
                sock.close()
