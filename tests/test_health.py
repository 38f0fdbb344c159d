"""Health on the metrics address: /livez while the master runs, /readyz only while
workers serve and no stop has begun -- so that a load balancer stops sending before the
drain closes connections.  Real sockets, real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from metrics_support import APP, get, request
from support import ROOT, free_port, server_env, terminate
from workers_support import Server, alive, started_servers, usr2, wait_until


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
