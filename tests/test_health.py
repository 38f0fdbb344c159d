"""Health on the metrics address: /livez while the master runs, /readyz only while
workers serve and no stop has begun -- so that a load balancer stops sending before the
drain closes connections.  Real sockets, real processes."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from metrics_support import APP, get, request
from support import ROOT, free_port, server_env, terminate
from workers_support import Server, alive, started_servers, usr2, wait_until

from wsgiloop.metrics.endpoint import MAX_CLIENTS, Endpoint


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    with started_servers() as start:
        yield start


def _health(port: int, path: str) -> int | None:
    try:
        return get(port, path, timeout=2)[0]
    except OSError:
        return None  # not listening (yet, or any more)


def test_readyz_waits_for_workers_to_serve():
    """The metrics address is bound before the workers boot: /livez answers at once,
    /readyz says 503 until a worker serves."""
    mport, port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsgiloop", APP, "-b", f"127.0.0.1:{port}",
         "--metrics-bind", f"127.0.0.1:{mport}"],
        env=server_env({"METRICS_APPS_IMPORT_DELAY": "3"}), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: _health(mport, "/livez") == 200, 15, "/livez")
        status, body, _ = get(mport, "/readyz")
        assert (status, body) == (503, "not ready: no worker serves yet\n")
        wait_until(lambda: _health(mport, "/readyz") == 200, 20, "/readyz to say ready")
    finally:
        terminate(proc, timeout=15)
        proc.stderr.close()


def test_readyz_fails_from_the_start_of_a_graceful_drain(serve, tmp_path):
    mport = free_port()
    server = serve("-w", "1", "--graceful-timeout", "20", "--metrics-bind",
                   f"127.0.0.1:{mport}", app=APP)
    server.wait_workers(1)
    assert _health(mport, "/readyz") == 200
    outcome: dict[str, object] = {}
    mark = tmp_path / "in-flight"

    def long_request() -> None:
        outcome["response"] = request(server.host, server.port, "GET",
                                      f"/slow?s=4&mark={mark}")
        outcome["finished_at"] = time.monotonic()

    client = threading.Thread(target=long_request)
    client.start()
    wait_until(mark.exists, 10, "the long request to be in the application")
    server.signal(signal.SIGTERM)
    wait_until(lambda: _health(mport, "/readyz") == 503, 10, "/readyz to say 503")
    seen_503_at = time.monotonic()
    assert "finished_at" not in outcome  # the request is still being served
    status, body, _ = get(mport, "/readyz")
    assert (status, body) == (503, "not ready: stopping\n")
    assert _health(mport, "/livez") == 200  # the master runs: only not ready
    client.join(20)
    status, body = outcome["response"]
    assert status == 200 and body.endswith(b"slept 4")
    assert outcome["finished_at"] > seen_503_at
    assert server.wait(20) == 0
    assert _health(mport, "/livez") is None  # gone with the master


def test_quit_is_not_ready_at_once(serve, tmp_path):
    mport = free_port()
    server = serve("-w", "2", "--metrics-bind", f"127.0.0.1:{mport}", app=APP)
    server.wait_workers(2)
    mark = tmp_path / "in-flight"
    threading.Thread(target=lambda: _quietly(server, f"/slow?s=5&mark={mark}"),
                     daemon=True).start()
    wait_until(mark.exists, 10, "a request in the application")
    server.signal(signal.SIGQUIT)
    # The worker, busy in the application, stops only when killed: the master waits.
    wait_until(lambda: _health(mport, "/readyz") == 503, 10, "/readyz to fail")
    assert server.wait(20) == 0


def _quietly(server: Server, path: str) -> None:
    try:
        request(server.host, server.port, "GET", path)
    except OSError:
        pass


def test_usr2_new_master_takes_the_metrics_address_over(serve):
    """The new master inherits the metrics socket with the application's (it could not
    bind the address while the old master holds it), and serves it once the old one
    has gone."""
    mport = free_port()
    server = serve("-w", "1", "--metrics-bind", f"127.0.0.1:{mport}", app=APP)
    server.wait_workers(1)
    new = usr2(server)
    server.wait_workers(1, master=new)
    server.signal(signal.SIGTERM)
    assert server.wait(20) == 0
    assert (_health(mport, "/readyz"), _health(mport, "/livez")) == (200, 200)
    assert re.search(rf"\[{new}\] \[INFO\] Metrics at: http://127.0.0.1:{mport} \(/metrics",
                     server.log)
    os.kill(new, signal.SIGTERM)
    wait_until(lambda: not alive(new), 20, "the new master to exit")
    assert _health(mport, "/livez") is None


def test_idle_connections_do_not_keep_a_probe_out(serve):
    """More silent connections than the endpoint keeps at once: the oldest make room,
    and a probe still gets its answer (Kubernetes would restart a pod whose /livez
    is refused)."""
    mport = free_port()
    server = serve("-w", "1", "--metrics-bind", f"127.0.0.1:{mport}", app=APP)
    server.wait_workers(1)
    idle = [socket.create_connection(("127.0.0.1", mport), timeout=5)
            for _ in range(MAX_CLIENTS + 8)]
    try:
        assert get(mport, "/livez")[:2] == (200, "ok\n")
        assert get(mport, "/readyz")[:2] == (200, "ready\n")
    finally:
        for sock in idle:
            sock.close()


def test_a_flood_of_connections_is_accepted_a_bounded_batch_per_pass():
    """The master's loop does other work between passes (heartbeats, signals): one pass
    of the endpoint accepts at most MAX_CLIENTS connections and leaves the rest in the
    backlog, rather than accepting (and dropping) for as long as connections come."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=MAX_CLIENTS * 4)
    endpoint = Endpoint([listener], {"/livez": lambda: (200, "text/plain", b"ok\n")})
    clients = [socket.create_connection(listener.getsockname(), timeout=5)
               for _ in range(MAX_CLIENTS * 3)]
    try:
        endpoint.handle([listener.fileno()], [])
        assert len(endpoint.fds()[0]) == 1 + MAX_CLIENTS  # the listener and a batch
        # Beyond MAX_CLIENTS the oldest would have been dropped: no client was.
        assert select.select(clients, [], [], 0.2)[0] == []
        endpoint.handle([listener.fileno()], [])  # the next pass takes the next batch
        closed = select.select(clients, [], [], 5)[0]
        assert set(closed) == set(clients[:MAX_CLIENTS])
        assert all(sock.recv(1) == b"" for sock in closed)
    finally:
        endpoint.close_clients()
        listener.close()
        for sock in clients:
            sock.close()


def test_a_new_connection_given_a_dropped_clients_descriptor_is_answered():
    """At capacity, accepting drops the oldest client; the next connection accepted may
    get its descriptor.  What select() said of the old client (writable) must not be
    applied to the new one (which was shut down unanswered)."""
    listener = socket.create_server(("127.0.0.1", 0))
    endpoint = Endpoint([listener], {"/livez": lambda: (200, "text/plain", b"ok\n")})
    clients = []
    try:
        for _ in range(MAX_CLIENTS):
            clients.append(socket.create_connection(listener.getsockname(), timeout=5))
            time.sleep(0.002)  # (each a later start than the one before)
            endpoint.handle([listener.fileno()], [])
        oldest = min(endpoint._clients.values(), key=lambda client: client.since)
        oldest.out = b"HTTP/1.1 200 OK\r\n\r\n"  # an answer the kernel did not take yet
        for _ in range(2):
            clients.append(socket.create_connection(listener.getsockname(), timeout=5))
        probe = clients[-1]
        probe.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        endpoint.handle([listener.fileno()], [oldest.sock.fileno()])
        for _ in range(50):
            readers, writers = endpoint.fds()
            ready = select.select(readers, writers, [], 0.1)
            endpoint.handle(*ready[:2])
            if select.select([probe], [], [], 0)[0]:
                break
        assert probe.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        endpoint.close_clients()
        listener.close()
        for sock in clients:
            sock.close()
