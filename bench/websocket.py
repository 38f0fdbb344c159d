"""WebSocket benchmark: wsgiloop's WebSocketHandler against Tornado's, in the same run.

    python bench/websocket.py [--duration 5] [--rounds 2] [--connections 50] [--batch 16]
                              [--size 32] [--listeners 1000] [--broadcasts 30]
                              [--fanout 5000] [--skip-codec]

Four parts, each printing its figures and the wsgiloop/Tornado ratio:

1. codec: the sans-I/O cost alone, in this process -- wsgiloop's frame reader and writer
   against wsproto's (the measurement behind writing the framing instead of depending on
   wsproto): N masked client frames parsed into messages and each answered with a frame;
2. echo: ``--connections`` clients each keep ``--batch`` messages of ``--size`` bytes in
   flight (sent in one write, the next batch once all came back), for ``--duration``
   seconds after a second of warm-up: messages echoed per second;
3. broadcast latency: ``--listeners`` clients on ``/broadcast``; one of them sends a
   message ``--broadcasts`` times; the time from the send until the last (and the median)
   listener has it, median over the broadcasts;
4. fan-out: ``--fanout`` clients (5,000) connected to one worker; five broadcasts; every
   client is checked to have each; the server's RSS idle, with the clients, and after.

Servers run one process each pinned to CPU 0, this client pinned to CPU 1; rounds
alternate between the servers (a fresh server each time).  The client is plain Python on
non-blocking sockets with pre-built frames, so its own cost per message is small but not
nil: the figures are for comparing the two servers, not absolute.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import selectors
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/websocket.py`: make bench importable
    sys.path.insert(0, str(ROOT))

from bench.native import free_port, start, stop  # noqa: E402
from bench.procstats import children, rss_kib  # noqa: E402

SERVERS = {
    "wsgiloop": lambda port: [sys.executable, "-m", "wsgiloop",
                              "bench.websocket_peers:application",
                              "--bind", f"127.0.0.1:{port}", "--backlog", "4096",
                              "--worker-connections", "20000"],
    "tornado": lambda port: [sys.executable, "bench/websocket_peers.py", "--port", str(port)],
}
MASK = b"\x11\x22\x33\x44"


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (payload under 126 bytes)."""
    assert len(payload) < 126
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + MASK + masked


def handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {data!r}")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101 "):
        raise ConnectionError(f"handshake refused: {data[:100]!r}")
    assert data.endswith(b"\r\n\r\n"), "frames before the first message"
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def server_pid(name: str, proc) -> int:
    if name == "wsgiloop":
        for _ in range(100):
            kids = children(proc.pid)
            if kids:
                return kids[0]
            time.sleep(0.05)
        raise RuntimeError("no worker")
    return proc.pid


def count_clients(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /count HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])["clients"]


# -- 1. the codec ----------------------------------------------------------------------------

def codec_bench(count: int = 100_000, size: int = 32) -> dict:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    from wsgiloop.http.websocket import TEXT, FrameReader, encode_frame

    payload = b"m" * size
    frames = client_frame(payload) * count
    chunks = [frames[i:i + 65536] for i in range(0, len(frames), 65536)]
    results = {}

    started = time.perf_counter()
    reader = FrameReader(1 << 20)
    got = 0
    for chunk in chunks:
        reader.feed(chunk)
        while (event := reader.next_event()) is not None:
            encode_frame(TEXT, event[1].encode())
            got += 1
    assert got == count
    results["wsgiloop"] = count / (time.perf_counter() - started)

    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade"
                    b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")
    for event in ws.events():
        if isinstance(event, Request):
            ws.send(AcceptConnection())
    started = time.perf_counter()
    got = 0
    partial = ""
    for chunk in chunks:
        ws.receive_data(chunk)
        for event in ws.events():
            # wsproto hands over what a chunk holds of a frame cut between chunks
            partial += event.data
            if event.message_finished:
                ws.send(TextMessage(data=partial))
                partial = ""
                got += 1
    assert got == count
    results["wsproto"] = count / (time.perf_counter() - started)
    return results


# -- 2. echo -----------------------------------------------------------------------------------

def echo_run(port: int, connections: int, batch: int, size: int, duration: float) -> float:
    out = client_frame(b"e" * size) * batch
    expected = (2 + size) * batch
    selector = selectors.DefaultSelector()
    remaining = {}
    for _ in range(connections):
        sock = handshake(port, "/echo")
        selector.register(sock, selectors.EVENT_READ)
        remaining[sock] = expected
        sock.send(out)
    counted = 0
    start_at = time.perf_counter() + 1.0  # warm-up
    end_at = start_at + duration
    while True:
        now = time.perf_counter()
        if now >= end_at:
            break
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            data = sock.recv(262144)
            if not data:
                raise ConnectionError("the server closed an echo connection")
            left = remaining[sock] - len(data)
            if left <= 0:
                if now >= start_at:
                    counted += batch
                left = expected
                sock.send(out)
            remaining[sock] = left
    for sock in remaining:
        sock.close()
    return counted / duration


# -- 3. broadcast latency ------------------------------------------------------------------------

def connect_many(port: int, path: str, count: int) -> list[socket.socket]:
    socks = [handshake(port, path) for _ in range(count)]
    deadline = time.monotonic() + 60
    while count_clients(port) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("not every client is registered")
        time.sleep(0.05)
    return socks


def broadcast_once(socks: list[socket.socket], payload: bytes) -> list[float]:
    """Send ``payload`` from the first client; the seconds until each client had it."""
    expected = 2 + len(payload)
    selector = selectors.DefaultSelector()
    got = {}
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
        got[sock] = b""
    times = []
    started = time.perf_counter()
    socks[0].send(client_frame(payload))
    while len(times) < len(socks):
        events = selector.select(10)
        if not events:
            raise TimeoutError(f"{len(socks) - len(times)} clients got nothing")
        for key, _ in events:
            sock = key.fileobj
            data = got[sock] + sock.recv(65536)
            got[sock] = data
            if len(data) >= expected:
                assert data[2:expected] == payload, data[:expected]
                times.append(time.perf_counter() - started)
                selector.unregister(sock)
    selector.close()
    return times


def broadcast_latency(port: int, listeners: int, broadcasts: int) -> dict:
    socks = connect_many(port, "/broadcast", listeners)
    last, median = [], []
    try:
        for i in range(broadcasts):
            times = broadcast_once(socks, f"broadcast {i:06d}".encode())
            last.append(max(times))
            median.append(statistics.median(times))
            time.sleep(0.02)
    finally:
        for sock in socks:
            sock.close()
    return {"last_ms": statistics.median(last) * 1000,
            "median_ms": statistics.median(median) * 1000}


# -- 4. fan-out to thousands -------------------------------------------------------------------

def fanout(name: str, count: int) -> dict:
    port = free_port()
    proc = start(SERVERS[name](port), port)
    try:
        pid = server_pid(name, proc)
        time.sleep(0.3)
        idle = rss_kib([pid]) / 1024
        started = time.perf_counter()
        socks = connect_many(port, "/broadcast", count)
        connect_s = time.perf_counter() - started
        held = rss_kib([pid]) / 1024
        received, last = [], []
        for i in range(5):
            times = broadcast_once(socks, f"to all of you, {i} ".encode() + b"x" * 60)
            received.append(len(times))
            last.append(max(times))
        after = rss_kib([pid]) / 1024
        for sock in socks:
            sock.close()
        return {"clients": count, "received": min(received), "connect_s": connect_s,
                "all_ms": statistics.median(last) * 1000, "rss_idle_mib": idle,
                "rss_held_mib": held, "rss_after_mib": after}
    finally:
        stop(proc)


# -- main --------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=30)
    parser.add_argument("--fanout", type=int, default=5000)
    parser.add_argument("--skip-codec", action="store_true")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max(args.fanout, args.listeners) * 2 + 200
    if hard < needed:
        print(f"RLIMIT_NOFILE hard limit {hard} is below {needed}", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    if not args.skip_codec:
        codec = codec_bench()
        print(f"codec, 100,000 {32}-byte messages parsed and answered: "
              f"wsgiloop {codec['wsgiloop']:,.0f}/s, wsproto {codec['wsproto']:,.0f}/s, "
              f"ratio {codec['wsgiloop'] / codec['wsproto']:.2f}")

    os.sched_setaffinity(0, {1})
    echo: dict[str, list[float]] = {name: [] for name in SERVERS}
    latency: dict[str, list[dict]] = {name: [] for name in SERVERS}
    for round_number in range(args.rounds):
        for name, command in SERVERS.items():
            port = free_port()
            proc = start(command(port), port)
            try:
                rate = echo_run(port, args.connections, args.batch, args.size, args.duration)
                echo[name].append(rate)
                result = broadcast_latency(port, args.listeners, args.broadcasts)
                latency[name].append(result)
            finally:
                stop(proc)
            print(f"round {round_number + 1} {name}: echo {rate:,.0f} messages/s; broadcast "
                  f"to {args.listeners}: last {result['last_ms']:.1f} ms, median "
                  f"{result['median_ms']:.1f} ms", flush=True)

    def med(name: str, key: str | None = None) -> float:
        if key is None:
            return statistics.median(echo[name])
        return statistics.median(r[key] for r in latency[name])

    print(f"\necho over {args.connections} connections ({args.batch} x {args.size} B in "
          f"flight each), median of {args.rounds}: wsgiloop {med('wsgiloop'):,.0f}/s, "
          f"tornado {med('tornado'):,.0f}/s, ratio {med('wsgiloop') / med('tornado'):.2f}")
    for key, what in (("last_ms", "until the last listener"),
                      ("median_ms", "until the median listener")):
        print(f"broadcast to {args.listeners}, {what}: wsgiloop {med('wsgiloop', key):.1f} ms,"
              f" tornado {med('tornado', key):.1f} ms, ratio (tornado/wsgiloop, >1: wsgiloop "
              f"faster) {med('tornado', key) / med('wsgiloop', key):.2f}")

    if args.fanout:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        for name in SERVERS:
            r = fanout(name, args.fanout)
            per_client = (r["rss_held_mib"] - r["rss_idle_mib"]) * 1024 / r["clients"]
            print(f"fan-out {name}: {r['received']}/{r['clients']} clients got each of 5 "
                  f"broadcasts, the last one after {r['all_ms']:.0f} ms (median; connecting "
                  f"took {r['connect_s']:.1f} s); RSS idle {r['rss_idle_mib']:.1f} MiB, "
                  f"holding {r['rss_held_mib']:.1f} MiB ({per_client:.1f} KiB a client), "
                  f"after the broadcasts {r['rss_after_mib']:.1f} MiB", flush=True)
            if r["received"] != r["clients"]:
                return 1
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
