"""The native example (examples/native_app) over the wire, and in-process with WebTest."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
import webtest
from support import ServerProcess


@pytest.fixture(scope="module")
def server():
    with ServerProcess("examples.native_app:application") as s:
        yield s


def call(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_page_and_static_files(server):
    resp, _ = call(server, "GET", "/")
    assert resp.status == 302 and resp.getheader("Location").endswith("/static/index.html")
    resp, page = call(server, "GET", "/static/index.html")
    assert resp.status == 200 and b"Live board" in page
    resp, script = call(server, "GET", "/static/board.js")
    assert resp.status == 200 and b"/api/poll" in script


def test_long_poll_is_released_by_a_post(server):
    _, data = call(server, "GET", "/api/messages")
    cursor = max([m["id"] for m in json.loads(data)["messages"]], default=0)
    results = []

    def poll():
        results.append(call(server, "GET", f"/api/poll?cursor={cursor}"))

    waiters = [threading.Thread(target=poll) for _ in range(5)]
    for t in waiters:
        t.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, data = call(server, "GET", "/api/messages")
        if json.loads(data)["waiting"] >= 5:
            break
        time.sleep(0.05)
    assert json.loads(data)["waiting"] >= 5
    resp, _ = call(server, "POST", "/api/messages",
                   json.dumps({"author": "ann", "text": "hello board"}),
                   {"Content-Type": "application/json"})
    assert resp.status == 201
    for t in waiters:
        t.join(10)
    assert len(results) == 5
    for resp, data in results:
        assert resp.status == 200
        assert [m["text"] for m in json.loads(data)["messages"]] == ["hello board"]


def _waiting(server) -> int:
    _, data = call(server, "GET", "/api/messages")
    return json.loads(data)["waiting"]


def _wait_for_waiting(server, count: int) -> int:
    deadline = time.monotonic() + 5
    while (seen := _waiting(server)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


@pytest.mark.parametrize("path", ["/api/poll?cursor={cursor}", "/api/events?cursor={cursor}"])
def test_a_client_that_leaves_stops_waiting(server, path):
    """A long poll or event stream whose client disconnects is no longer counted (its
    wait is cancelled at once, not left to its 30 s timeout)."""
    _, data = call(server, "GET", "/api/messages")
    cursor = max([m["id"] for m in json.loads(data)["messages"]], default=0)
    before = _waiting(server)
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(f"GET {path.format(cursor=cursor)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert _wait_for_waiting(server, before + 1) == before + 1
    sock.close()
    assert _wait_for_waiting(server, before) == before


def test_event_stream_delivers_posts(server):
    _, data = call(server, "GET", "/api/messages")
    cursor = max([m["id"] for m in json.loads(data)["messages"]], default=0)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", f"/api/events?cursor={cursor}")
    resp = conn.getresponse()
    assert resp.getheader("Content-Type") == "text/event-stream"
    assert resp.readline() == b": connected\n"
    call(server, "POST", "/api/messages", "author=bob&text=streamed",
         {"Content-Type": "application/x-www-form-urlencoded"})
    lines = []
    while not any(line.startswith(b"data:") for line in lines):
        lines.append(resp.readline())
    data = json.loads(next(line for line in lines if line.startswith(b"data:"))[5:])
    assert data["text"] == "streamed" and data["author"] == "bob"
    conn.close()


def test_empty_post_is_a_400(server):
    resp, _ = call(server, "POST", "/api/messages", json.dumps({"text": " "}),
                   {"Content-Type": "application/json"})
    assert resp.status == 400


def test_flask_mounted_under_legacy(server):
    resp, data = call(server, "GET", "/legacy/")
    assert resp.status == 200
    assert json.loads(data)["script_name"] == "/legacy"


def test_in_process_with_webtest():
    from examples.native_app import application

    app = webtest.TestApp(application)
    posted = app.post_json("/api/messages", {"author": "t", "text": "in process"}, status=201)
    assert posted.json["text"] == "in process"
    assert app.get("/api/messages").json["messages"][-1]["text"] == "in process"
    assert app.get("/legacy/").json["app"] == "flask"


def test_live_channel_over_a_websocket(server):
    """Messages posted over HTTP reach the WebSocket, and one sent on it is posted."""
    import websocket  # websocket-client

    ws = websocket.create_connection(f"ws://{server.host}:{server.port}/api/live", timeout=10)
    try:
        assert "messages" in json.loads(ws.recv())  # the recent ones, on opening
        resp, _ = call(server, "POST", "/api/messages",
                       json.dumps({"author": "http", "text": "to the socket"}),
                       {"Content-Type": "application/json"})
        assert resp.status == 201
        assert json.loads(ws.recv())["messages"][0]["text"] == "to the socket"
        ws.send(json.dumps({"author": "ws", "text": "from the socket"}))
        assert json.loads(ws.recv())["messages"][0]["text"] == "from the socket"
        _, data = call(server, "GET", "/api/messages")
        assert json.loads(data)["messages"][-1]["text"] == "from the socket"
        assert json.loads(data)["sockets"] >= 1
        ws.send("not json")
        opcode, payload = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE and payload[:2] == (1003).to_bytes(2, "big")
    finally:
        ws.close()
