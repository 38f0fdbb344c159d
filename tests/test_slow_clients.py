"""Slow and stalled clients against a real server: what they may cost a worker.

* Connections closed at the header deadline are freed: a worker hit by rounds of
  stalled clients returns to its memory baseline.
* A response nobody reads is dropped after ``--send-timeout`` without progress, the
  application's iterable is closed, and the unsent part was never pulled from it.
* A body trickled fast enough for ``--body-timeout`` but below ``--body-min-rate`` gets
  408.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from support import ServerProcess, rss_mb

CHUNK = 65536
TOTAL = 64 << 20  # what each slow reader asks for


def _stall_round(server: ServerProcess, count: int) -> None:
    """``count`` clients that send part of a head and stall; returns once the server has
    answered and closed each of them."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection((server.host, server.port))
        sock.sendall(b"GET /environ HTTP/1.1\r\nHost: exa")
        socks.append(sock)
    deadline = time.monotonic() + 30
    for sock in socks:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            pass
        sock.close()
        assert reply.startswith(b"HTTP/1.1 408 "), reply[:100]


def _rss_settles(pid: int, limit: float, timeout: float = 10.0) -> float:
    """The worker's RSS once it is at most ``limit`` MiB, or its last value after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        rss = rss_mb(pid)
        if rss <= limit or time.monotonic() > deadline:
            return rss
        time.sleep(0.2)


def test_header_timeouts_leave_no_memory_behind() -> None:
    """Rounds of 400 stalled clients, each answered 408 at the (1 s) header deadline:
    after each round the worker is back within 2 MiB of its baseline after a warm-up
    round.  (The closed connections used to wait for the cycle collector: a worker grew
    by ~1 MiB a round and more.)"""
    with ServerProcess("apps:app", "--workers", "1", "--header-timeout", "1") as server:
        pid = server.worker_pid
        _stall_round(server, 400)  # warm-up: allocator pools, the loop's structures
        _stall_round(server, 400)
        baseline = _rss_settles(pid, 0, timeout=1)
        time.sleep(0.5)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        seen = []
        for _ in range(5):
            _stall_round(server, 400)
            seen.append(round(_rss_settles(pid, baseline + 2), 1))
        assert max(seen) <= baseline + 2, f"baseline {baseline:.1f} MiB, after rounds {seen}"
        deadline = time.monotonic() + 10
        while len(os.listdir(f"/proc/{pid}/fd")) > fds and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(os.listdir(f"/proc/{pid}/fd")) <= fds


# -- send timeout -------------------------------------------------------------------------------


def _slow_reader(server: ServerProcess, target: str) -> socket.socket:
    """A client with a tiny receive buffer that asks for ``target`` and reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _read_until_closed(sock: socket.socket, timeout: float, per_read: int = 65536,
                       pause: float = 0.0) -> tuple[int, bool]:
    """Read (``per_read`` bytes every ``pause`` seconds) until the server closes;
    returns the bytes read and whether the server closed within ``timeout``."""
    deadline = time.monotonic() + timeout
    received = 0
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(per_read)
        except (ConnectionResetError, BrokenPipeError):
            return received, True
        except TimeoutError:
            break
        if not chunk:
            return received, True
        received += len(chunk)
        if pause:
            time.sleep(pause)
    return received, False


def _closes(server: ServerProcess) -> list[str]:
    with server.connect() as sock:
        sock.sendall(b"GET /closes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


def _wait_closed(server: ServerProcess, tag: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tag in _closes(server):
            return True
        time.sleep(0.1)
    return False


SEND_TIMEOUT_CASES = {
    # a generator of 64 KiB chunks, on the loop thread and on worker threads
    "generator": ("apps:app", (), f"/tracked?tag={{tag}}&count={TOTAL // CHUNK}"
                                  f"&size={CHUNK}&cl=1"),
    "generator-threads": ("apps:app", ("--threads", "2"),
                          f"/tracked?tag={{tag}}&count={TOTAL // CHUNK}&size={CHUNK}&cl=1"),
    # the write() callable on worker threads, where it waits for the socket
    "write-threads": ("apps:app", ("--threads", "2"),
                      f"/write-big?tag={{tag}}&count={TOTAL // CHUNK}&size={CHUNK}"),
    # a native handler awaiting flush()
    "native": ("apps:native_slow_application()", (), f"/big?tag={{tag}}&n={TOTAL >> 20}"),
}


@pytest.mark.parametrize("case", list(SEND_TIMEOUT_CASES))
@pytest.mark.parametrize("reader", ["reads-nothing", "reads-a-byte-at-a-time"])
def test_reader_that_takes_nothing_is_dropped_after_send_timeout(case: str,
                                                                 reader: str) -> None:
    """A 64 MiB response to a client that reads nothing (or a byte now and then): the
    connection is closed after --send-timeout without progress, the application hears of
    it (its iterable's close(), a native handler's on_connection_close), only a little
    was ever produced, and the worker did not grow by anything like 64 MiB."""
    app, args, target = SEND_TIMEOUT_CASES[case]
    tag = f"{case}-{reader}"
    with ServerProcess(app, "--workers", "1", "--send-timeout", "1", *args) as server:
        pid = server.worker_pid
        _closes(server)  # warm up
        baseline = rss_mb(pid)
        with _slow_reader(server, target.format(tag=tag)) as sock:
            peak = baseline
            end = time.monotonic() + 1.5
            while time.monotonic() < end:  # the server stalls: no memory for the rest
                peak = max(peak, rss_mb(pid))
                time.sleep(0.1)
            if reader == "reads-nothing":
                time.sleep(1.0)
                received, closed = _read_until_closed(sock, 15)
            else:  # 20 bytes/s for a while, then the rest of what the server sent
                received, closed = _read_until_closed(sock, 4, per_read=1, pause=0.05)
                if not closed:
                    more, closed = _read_until_closed(sock, 15)
                    received += more
            peak = max(peak, rss_mb(pid))
        assert closed, f"the server kept a connection nobody reads ({received} bytes read)"
        assert received < TOTAL // 4
        assert _wait_closed(server, tag), "the application was not told the client is gone"
        assert peak - baseline < 16, f"RSS grew {peak - baseline:.1f} MiB for a stalled reader"
        server.wait_for_log(r"sending to .* timed out")
        assert "Traceback" not in server.log


def test_body_below_the_minimum_rate_gets_408() -> None:
    """A body trickled often enough never to trip --body-timeout (no progress for that
    long), but at far below --body-min-rate, gets 408 soon after --body-timeout."""
    with ServerProcess("apps:app", "--workers", "1", "--body-timeout", "2",
                       "--body-min-rate", "1000") as server:
        with server.connect(timeout=20) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            sock.settimeout(0.3)
            reply = b""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    sock.sendall(b"z" * 10)  # 10 bytes every 0.3 s: ~33 bytes/s
                except OSError:
                    break
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
        server.wait_for_log(r"request body too slow")


def test_body_at_the_minimum_rate_is_received() -> None:
    with ServerProcess("apps:app", "--workers", "1", "--body-timeout", "1",
                       "--body-min-rate", "1000") as server:
        with server.connect(timeout=20) as sock:
            body = b"w" * 6000
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6000\r\n"
                         b"Connection: close\r\n\r\n")
            for i in range(0, len(body), 500):  # 500 bytes every 0.2 s: ~2500 bytes/s
                sock.sendall(body[i:i + 500])
                time.sleep(0.2)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]


def test_a_write_loop_on_a_worker_thread_stops_when_the_client_has_gone() -> None:
    """An application writing through the write() callable for ever (here 64 GiB) on a
    worker thread, where write() waits for the socket, hears that its client has gone:
    write() raises, and nothing is logged as an error.  (On the loop thread write() cannot
    wait, and the loop sees nothing while the application runs.)"""
    with ServerProcess("apps:app", "--workers", "1", "--threads", "2") as server:
        tag = "forever"
        with server.connect() as sock:
            sock.sendall(f"GET /write-big?tag={tag}&count=1000000&size=65536 HTTP/1.1\r\n"
                         f"Host: x\r\n\r\n".encode())
            received = 0
            while received < 300_000:
                chunk = sock.recv(65536)
                assert chunk
                received += len(chunk)
        assert _wait_closed(server, f"{tag}:write-raised"), server.log[-2000:]
        assert "Traceback" not in server.log, server.log[-3000:]
