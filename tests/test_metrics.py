"""Metrics end to end: the master's Prometheus endpoint on --metrics-bind, scraped with
a real HTTP client and read with prometheus_client's parser, and gunicorn's statsd
metrics received by a real UDP (and unix datagram) listener."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from metrics_support import APP, get, per_worker, request, scrape, value, wait_scrape
from support import ROOT, free_port, server_env
from workers_support import Server, started_servers

from wsgiloop.metrics.statsd import (
    LogCounter,
    StatsdClient,
    normalized_prefix,
    parse_statsd_address,
)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    with started_servers() as start:
        yield start


def _start(serve: Callable[..., Server], *args: str) -> tuple[Server, int]:
    port = free_port()
    server = serve("--metrics-bind", f"127.0.0.1:{port}", *args, app=APP)
    return server, port


def test_counts_add_up_across_two_workers(serve):
    server, mport = _start(serve, "-w", "2")
    workers = server.wait_workers(2)
    host, port = server.host, server.port
    bodies_out = 0
    connections = 0
    statuses: dict[int, int] = {}

    def note(status: int, body: bytes, new_connection: bool = True) -> None:
        nonlocal bodies_out, connections
        bodies_out += len(body)
        connections += new_connection
        statuses[status // 100] = statuses.get(status // 100, 0) + 1

    # Two slow requests at once, each on its own connection, until both workers have
    # answered: a worker sleeping in the application leaves the next one to the other.
    served_by: set[int] = set()
    with ThreadPoolExecutor(2) as pool:
        for _ in range(20):
            results = list(pool.map(lambda _: request(host, port, "GET", "/slow?s=0.3"),
                                    range(2)))
            for status, body in results:
                note(status, body)
                served_by.add(int(body.split()[0]))
            if served_by == set(workers):
                break
    assert served_by == set(workers)
    slow = sum(statuses.values())

    for code in (404, 404, 404, 503, 503):
        note(*request(host, port, "GET", f"/status/{code}"))
    keep = http.client.HTTPConnection(host, port, timeout=15)
    for n in range(4):
        note(*request(host, port, "GET", "/bytes?n=1000", conn=keep), new_connection=n == 0)
    for _ in range(2):
        note(*request(host, port, "POST", "/echo", body=b"y" * 5000))
    # Three connections left open (idle, after one request each) for the active gauge.
    idle = [http.client.HTTPConnection(host, port, timeout=15) for _ in range(3)]
    for conn in idle:
        note(*request(host, port, "GET", "/", conn=conn))
    total = sum(statuses.values())

    samples = wait_scrape(mport, lambda s: value(s, "wsgiloop_connections_active") == 4
                          and value(s, "wsgiloop_connections_accepted_total") == connections,
                          "4 open connections and every connection accepted counted")
    for cls, count in (("1xx", 0), ("2xx", statuses[2]), ("3xx", 0), ("4xx", statuses[4]),
                       ("5xx", statuses[5])):
        assert value(samples, "wsgiloop_requests_total", status_class=cls) == count, cls
    assert (statuses[4], statuses[5]) == (3, 2)
    assert value(samples, "wsgiloop_request_duration_seconds_count") == total
    assert value(samples, "wsgiloop_request_duration_seconds_bucket", le="+Inf") == total
    # The slow requests slept 0.3 s: none of them fits in a bucket below that.
    assert value(samples, "wsgiloop_request_duration_seconds_bucket", le="0.25") <= total - slow
    assert value(samples, "wsgiloop_request_duration_seconds_sum") >= 0.3 * slow
    assert value(samples, "wsgiloop_request_body_bytes_total") == 10000
    assert value(samples, "wsgiloop_response_body_bytes_total") == bodies_out
    by_worker = per_worker(samples, "wsgiloop_worker_requests_total")
    assert set(by_worker) == {str(pid) for pid in workers}
    assert sum(by_worker.values()) == total and all(by_worker.values())
    rss = per_worker(samples, "wsgiloop_worker_resident_memory_bytes")
    assert set(rss) == {str(pid) for pid in workers} and min(rss.values()) > 1 << 20
    assert set(per_worker(samples, "wsgiloop_worker_loop_lag_seconds")) == set(rss)
    assert value(samples, "wsgiloop_workers") == 2
    assert value(samples, "wsgiloop_ready") == 1

    keep.close()
    for conn in idle:
        conn.close()
    wait_scrape(mport, lambda s: value(s, "wsgiloop_connections_active") == 0,
                "the connections closed")


def test_restarts_counted_by_reason_and_counts_kept(serve):
    server, mport = _start(serve, "-w", "2")
    first = server.wait_workers(2)
    for _ in range(6):
        request(server.host, server.port, "GET", "/")

    def restarts(samples: dict) -> dict[str, float]:
        return {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                if name == "wsgiloop_worker_restarts_total"}

    assert set(restarts(scrape(mport)).values()) == {0}
    # A worker killed by a signal the master did not send: a crash.
    os.kill(first[0], signal.SIGKILL)
    second = server.wait_workers(2, exclude={first[0]})
    samples = wait_scrape(mport, lambda s: restarts(s)["crash"] == 1, "the crash counted")
    # What the dead worker counted is kept.
    assert value(samples, "wsgiloop_requests_total", status_class="2xx") == 6
    # A worker that exits by itself (TERM from someone else than the master).
    os.kill(second[0], signal.SIGTERM)
    third = server.wait_workers(2, exclude={first[0], second[0]})
    wait_scrape(mport, lambda s: restarts(s)["exit"] == 1, "the exit counted")
    # A reload replaces both.
    server.signal(signal.SIGHUP)
    server.wait_workers(2, exclude=set(first) | set(second) | set(third))
    samples = wait_scrape(mport, lambda s: restarts(s)["reload"] == 2, "the reload counted")
    assert restarts(samples) == {"exit": 1, "crash": 1, "timeout": 0, "request-timeout": 0,
                                 "boot-error": 0, "max-requests": 0, "max-rss": 0,
                                 "reload": 2}
    assert value(samples, "wsgiloop_requests_total", status_class="2xx") == 6
    assert server.stop() == 0


def test_max_requests_and_timeouts_are_reasons(serve):
    server, mport = _start(serve, "-w", "1", "--max-requests", "3", "--timeout", "1")
    for _ in range(7):
        request(server.host, server.port, "GET", "/")
    wait_scrape(mport, lambda s: value(s, "wsgiloop_worker_restarts_total",
                                       reason="max-requests") == 2, "two retirements")
    # A request that blocks the worker's loop past --timeout: killed by the master.
    threading.Thread(target=lambda: get_quietly(server, "/slow?s=30"), daemon=True).start()
    wait_scrape(mport, lambda s: value(s, "wsgiloop_worker_restarts_total",
                                       reason="timeout") == 1, "the timeout kill counted")
    # A request past --request-timeout: the worker ends itself.
    server, mport = _start(serve, "-w", "1", "--request-timeout", "1")
    threading.Thread(target=lambda: get_quietly(server, "/slow?s=30"), daemon=True).start()
    samples = wait_scrape(mport, lambda s: value(s, "wsgiloop_worker_restarts_total",
                                                 reason="request-timeout") == 1,
                          "the request timeout counted")
    assert value(samples, "wsgiloop_worker_restarts_total", reason="timeout") == 0


def get_quietly(server: Server, path: str) -> None:
    try:
        request(server.host, server.port, "GET", path)
    except OSError:
        pass  # the worker was killed under it


def test_metrics_bind_must_differ_from_bind():
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "wsgiloop", APP, "-b", f"127.0.0.1:{port}",
         "--metrics-bind", f"127.0.0.1:{port}"], env=server_env(), cwd=ROOT,
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"wsgiloop: error: --metrics-bind 127.0.0.1:{port}: this is a --bind address; "
        "give metrics an address of their own"]
    result = subprocess.run(
        [sys.executable, "-m", "wsgiloop", APP, "--metrics-bind", "nope:x"],
        env=server_env(), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "wsgiloop: error: --metrics-bind: invalid value 'nope:x': bad bind address "
        "'nope:x': port 'x' is not a number"]
    result = subprocess.run(
        [sys.executable, "-m", "wsgiloop", APP, "--statsd-host",
         "no-such-host.invalid:8125"],
        env=server_env(), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "wsgiloop: error: --statsd-host no-such-host.invalid:8125: cannot resolve the host (")
    assert len(result.stderr.splitlines()) == 1


def test_endpoint_answers_only_its_routes(serve):
    server, mport = _start(serve)
    server.wait_workers(1)
    # A client that connects and says nothing does not hold the master up.
    silent = socket.create_connection(("127.0.0.1", mport), timeout=5)
    assert get(mport, "/livez")[:2] == (200, "ok\n")
    status, body, _ = get(mport, "/other")
    assert status == 404 and "/metrics" in body
    conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
    conn.request("DELETE", "/metrics")
    response = conn.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "GET, HEAD")
    conn.close()
    # Garbage gets a 400 and the master goes on serving.
    with socket.create_connection(("127.0.0.1", mport), timeout=5) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
    # The application's port does not serve metrics: the application answers there.
    status, body = request(server.host, server.port, "GET", "/metrics")
    assert (status, body) == (200, str(server.worker_pid).encode())
    assert get(mport, "/readyz")[0] == 200
    silent.close()


# -- statsd --------------------------------------------------------------------------------


def _collect(sock: socket.socket, done: Callable[[list[str]], bool], what: str,
             timeout: float = 15.0) -> list[str]:
    """Metric lines received on ``sock`` until ``done(lines)``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not done(lines):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; got {lines}")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            lines += sock.recv(65536).decode().split("\n")
        except TimeoutError:
            pass
    return lines


def test_statsd_sends_gunicorns_metrics_over_udp(serve):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        server = serve("-w", "2", "--statsd-host", address, "--statsd-prefix", "shop",
                       "--dogstatsd-tags", "env:test,team:web", app=APP)
        workers = server.wait_workers(2)
        for path in ("/", "/", "/status/404", "/warn"):
            request(server.host, server.port, "GET", path)
        tags = "|#env:test,team:web"
        lines = _collect(listener, lambda got: sum(
            line.startswith("shop.gunicorn.requests:") for line in got) == 4
            and f"shop.gunicorn.log.warning:1|c|@1.0{tags}" in got
            and f"shop.gunicorn.workers:2|g{tags}" in got, "the statsd lines")
        assert lines.count(f"shop.gunicorn.requests:1|c|@1.0{tags}") == 4
        assert lines.count(f"shop.gunicorn.request.status.200:1|c|@1.0{tags}") == 3
        assert lines.count(f"shop.gunicorn.request.status.404:1|c|@1.0{tags}") == 1
        durations = [line for line in lines if line.startswith("shop.gunicorn.request.duration:")]
        assert len(durations) == 4
        for line in durations:
            milliseconds, rest = line.removeprefix("shop.gunicorn.request.duration:").split("|", 1)
            assert float(milliseconds) >= 0 and rest == "ms" + tags
        # The master's error log counts too: a worker killed from outside is an error.
        os.kill(workers[0], signal.SIGKILL)
        _collect(listener, lambda got: f"shop.gunicorn.log.error:1|c|@1.0{tags}" in got,
                 "the master's error line counted")
        assert server.stop() == 0


def test_statsd_from_a_gunicorn_config_file_to_a_unix_socket(serve, tmp_path):
    path = tmp_path / "statsd.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        (tmp_path / "gunicorn.conf.py").write_text(
            f"statsd_host = 'unix://{path}'\nstatsd_prefix = 'app...'\nworkers = 1\n")
        server = serve("-c", str(tmp_path / "gunicorn.conf.py"), app=APP)
        request(server.host, server.port, "GET", "/status/201")
        lines = _collect(listener, lambda got: "app.gunicorn.requests:1|c|@1.0" in got,
                         "the request's lines")
        assert "app.gunicorn.request.status.201:1|c|@1.0" in lines
        assert "app.gunicorn.workers:1|g" in lines
        assert server.stop() == 0
        assert "ignored" not in server.log


def test_statsd_settings_from_the_environment(serve):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        server = serve(app=APP, env={
            "WSGILOOP_STATSD_HOST": f"127.0.0.1:{listener.getsockname()[1]}",
            "GUNICORN_CMD_ARGS": "--statsd-prefix fromenv"})
        request(server.host, server.port, "GET", "/")
        _collect(listener, lambda got: "fromenv.gunicorn.requests:1|c|@1.0" in got,
                 "a request counted under the prefix from GUNICORN_CMD_ARGS")
        assert server.stop() == 0


# -- the statsd address and prefix, as gunicorn reads them --------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("localhost:9125", (socket.AF_INET, ("localhost", 9125))),
    ("localhost", (socket.AF_INET, ("localhost", 8125))),
    ("udp://10.0.0.1:1", (socket.AF_INET, ("10.0.0.1", 1))),
    ("[::1]:9125", (socket.AF_INET6, ("::1", 9125))),
    ("[::1]", (socket.AF_INET6, ("::1", 8125))),
    ("unix:/run/statsd.sock", (socket.AF_UNIX, "/run/statsd.sock")),
    ("unix:///run/statsd.sock", (socket.AF_UNIX, "/run/statsd.sock")),
    ("unix:8125", (socket.AF_INET, ("unix", 8125))),  # gunicorn's reading, kept
])
def test_statsd_addresses(text, expected):
    assert parse_statsd_address(text) == expected


@pytest.mark.parametrize("text", ["", ":8125", "host:0", "host:x", "[::1", "unix:",
                                  "a b:1", "host:70000"])
def test_bad_statsd_addresses(text):
    with pytest.raises(ValueError):
        parse_statsd_address(text)


def test_statsd_prefix_gets_one_dot():
    assert [normalized_prefix(p) for p in ("", "app", "app.", "app...", "a.b")] == [
        "", "app.", "app.", "app.", "a.b."]


def test_log_lines_counted_as_gunicorns_log_metrics():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        client = StatsdClient(f"127.0.0.1:{listener.getsockname()[1]}", "p", "t:1")
        logger = logging.getLogger("test_metrics.log_counter")
        logger.propagate = False
        counter = LogCounter(client)
        logger.addHandler(counter)
        try:
            logger.info("not counted")
            logger.warning("w")
            logger.error("e")
            try:
                raise ValueError("x")
            except ValueError:
                logger.exception("x")
            logger.critical("c")
            client.flush()
        finally:
            logger.removeHandler(counter)
            client.close()
        lines = _collect(listener, lambda got: len(got) >= 4, "four log lines")
        assert lines == [f"p.gunicorn.log.{kind}:1|c|@1.0|#t:1"
                         for kind in ("warning", "error", "exception", "critical")]


def test_log_counting_survives_a_log_config_applied_again_on_hup(serve, tmp_path):
    """A log config naming gunicorn.error replaces that logger's handlers whenever it is
    applied (at start, on HUP): the workers started after a HUP still count their log
    lines."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        (tmp_path / "gunicorn.conf.py").write_text(f"""
statsd_host = "127.0.0.1:{listener.getsockname()[1]}"
logconfig_dict = {{
    "version": 1,
    "formatters": {{"plain": {{
        "format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"}}}},
    "handlers": {{"err": {{"class": "logging.StreamHandler", "formatter": "plain",
                           "stream": "ext://sys.stderr"}}}},
    "loggers": {{"gunicorn.error": {{"level": "INFO", "handlers": ["err"],
                                    "propagate": False}}}},
}}
""")
        server = serve("-w", "1", "-c", str(tmp_path / "gunicorn.conf.py"), app=APP)
        first = server.wait_workers(1)
        server.signal(signal.SIGHUP)
        server.wait_workers(1, exclude=set(first))
        request(server.host, server.port, "GET", "/warn")
        _collect(listener, lambda got: "gunicorn.log.warning:1|c|@1.0" in got,
                 "the new worker's warning counted")
        assert server.stop() == 0


def test_a_websocket_is_an_open_connection_and_a_1xx_response(serve):
    import websocket  # websocket-client

    port = free_port()
    server = serve("--metrics-bind", f"127.0.0.1:{port}", app="metrics_apps:native")
    client = websocket.create_connection(f"ws://{server.host}:{server.port}/ws", timeout=10)
    try:
        client.send("hi")
        assert client.recv() == "hi"
        samples = wait_scrape(port, lambda s: value(s, "wsgiloop_connections_active") == 1,
                              "the WebSocket counted as open")
        assert value(samples, "wsgiloop_requests_total", status_class="1xx") == 1
    finally:
        client.close()
    wait_scrape(port, lambda s: value(s, "wsgiloop_connections_active") == 0,
                "the WebSocket closed")
