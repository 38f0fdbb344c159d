"""``--worker-connections``: a worker holding that many connections stops accepting, so
new connections wait in the listen backlog (for another worker, or until one closes)
instead of being accepted and starved.  Over real sockets against a server subprocess.

"No answer" is checked by waiting a short while for a response that must not come; the
connection itself is made (the kernel completes it into the backlog).
"""

from __future__ import annotations

import json
import socket
from collections import Counter

import pytest
from support import ServerProcess

APP = "apps:limits_app"
REQUEST = b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
SHORT_WAIT = 1.0


def read_response(sock: socket.socket) -> dict:
    """One response (Content-Length framed, JSON body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return json.loads(body)


def held_connection(server: ServerProcess) -> tuple[socket.socket, int]:
    """A keep-alive connection that has had one request answered; and the pid that did."""
    sock = server.connect(timeout=10)
    sock.sendall(REQUEST)
    return sock, read_response(sock)["pid"]


def assert_no_answer(sock: socket.socket) -> None:
    sock.settimeout(SHORT_WAIT)
    with pytest.raises(TimeoutError):
        data = sock.recv(65536)
        pytest.fail(f"answered while the worker is full: {data!r}")
    sock.settimeout(10)


def test_a_full_worker_accepts_again_when_a_connection_closes():
    with ServerProcess(APP, "--worker-connections", "5", "--keep-alive", "60") as server:
        held = [held_connection(server)[0] for _ in range(5)]
        waiting = server.connect(timeout=10)  # the kernel completes it into the backlog
        waiting.sendall(REQUEST)
        assert_no_answer(waiting)
        held.pop().close()
        assert read_response(waiting)["pid"] == server.worker_pid
        # Full again: the next one waits in turn.
        another = server.connect(timeout=10)
        another.sendall(REQUEST)
        assert_no_answer(another)
        waiting.close()
        assert read_response(another)["pid"] == server.worker_pid
        for sock in held + [another]:
            sock.close()


def test_connections_past_one_workers_limit_go_to_the_other():
    """Two workers with a limit of 3: six held connections are three on each (the kernel
    gives the shared socket's connections to whichever worker still listens), and a
    seventh waits until one of them closes."""
    with ServerProcess(APP, "-w", "2", "--worker-connections", "3",
                       "--keep-alive", "60") as server:
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")
        held = [held_connection(server) for _ in range(6)]
        per_worker = Counter(pid for _, pid in held)
        assert sorted(per_worker.values()) == [3, 3], per_worker
        waiting = server.connect(timeout=10)
        waiting.sendall(REQUEST)
        assert_no_answer(waiting)
        sock, pid = held.pop()
        sock.close()
        assert read_response(waiting)["pid"] == pid  # the worker that had room again
        for sock, _ in held:
            sock.close()
        waiting.close()


def test_out_of_descriptors_pauses_accepting_then_serves():
    """The same pause with no descriptor left (a real EMFILE from accept: the app lowers
    its worker's RLIMIT_NOFILE): the pause is logged, the connection waits in the
    backlog, and once descriptors are back it is served."""
    with ServerProcess(APP, "--keep-alive", "60") as server:
        control, _ = held_connection(server)
        control.sendall(b"GET /nofile HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(control)
        waiting = server.connect(timeout=10)
        waiting.sendall(REQUEST)
        server.wait_for_log("cannot accept a connection: .*Too many open files")
        assert_no_answer(waiting)
        control.sendall(b"GET /nofile-restore HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(control)
        assert read_response(waiting)["pid"] == server.worker_pid
        assert "Traceback" not in server.log
        control.close()
        waiting.close()
