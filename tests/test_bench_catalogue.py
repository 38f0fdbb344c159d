"""The benchmark's catalogue and report (bench/): every server's command line formats,
issue 11's targets name servers and scenarios that exist, repeated runs fold into their
median, the best peer leaves wsgiloop and the reference lines out, profile layers are
assigned by file, and the C ceiling compiles and answers (when gcc is there)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import catalogue  # noqa: E402
from bench.catalogue import SCENARIOS, SERVERS, TARGETS  # noqa: E402
from bench.profile import layer_of, module_of  # noqa: E402
from bench.report import Run, best_peer, median_run, target_results  # noqa: E402


def test_every_command_formats_without_placeholders_left():
    for server in SERVERS.values():
        for argv in ([server.command("hello", 8123)] if server.argv else []) + (
                [server.command("hello", 8123, workers=2, pidlog="/tmp/x")]
                if server.multi_argv else []):
            assert not any(re.search(r"\{[a-z]+\}", a) for a in argv), (server.name, argv)
            assert "8123" in " ".join(argv), server.name


def test_new_peers_are_in_the_catalogue():
    for name in ("granian", "bjoern", "meinheld", "fastwsgi", "socketify", "uwsgi",
                 "c-ceiling", "gunicorn-sync", "waitress", "tornado-wsgi"):
        assert name in SERVERS
    assert SERVERS["c-ceiling"].reference and SERVERS["tornado-native"].reference
    assert SERVERS["c-ceiling"].hello_only


def test_targets_name_known_servers_and_scenarios():
    for t in TARGETS:
        assert t.scenario in SCENARIOS
        assert t.peer in SERVERS
    assert SCENARIOS["stream-256k"].connections == 20


def test_median_run_and_best_peer():
    a = Run("hello", "bjoern", rps=100.0, p99_us=10.0)
    b = Run("hello", "bjoern", rps=300.0, p99_us=30.0, problems=["boom"])
    m = median_run([a, b])
    assert m.rps == 200.0 and m.p99_us == 20.0
    assert m.rps_runs == [100.0, 300.0]
    assert m.problems == ["run 2: boom"]
    runs = [m, Run("hello", "wsgiloop", rps=1000.0), Run("hello", "c-ceiling", rps=5000.0),
            Run("hello", "granian", rps=150.0)]
    assert best_peer(runs).server == "bjoern"


def test_target_results():
    runs = [Run("hello", "wsgiloop", rps=90.0), Run("hello", "bjoern", rps=100.0),
            Run("hello-1000c", "wsgiloop", rps=90.0, p99_us=50_000,
                rss_worker_end_kib=20 * 1024),
            Run("hello-1000c", "bjoern", rps=100.0)]
    res = {r["scenario"]: r for r in target_results(runs)}
    assert res["hello"]["met"] is True
    assert res["hello-1000c"]["met"] is False  # p99 50 ms > 40 ms
    assert any("p99" in w for w in res["hello-1000c"]["why"])


def test_profile_layers():
    assert layer_of(module_of(str(ROOT / "wsgiloop" / "ioloop.py"))) == "loop"
    assert layer_of(module_of(str(ROOT / "wsgiloop" / "iostream.py"))) == "stream"
    assert layer_of(module_of(str(ROOT / "wsgiloop" / "http" / "parser.py"))) == "parser"
    assert layer_of(module_of(str(ROOT / "wsgiloop" / "server.py"))) == "connection"
    assert layer_of(module_of(str(ROOT / "wsgiloop" / "wsgi" / "gateway.py"))) == "gateway"
    assert layer_of(module_of(str(ROOT / "bench" / "apps.py"))) == "app"
    assert layer_of(module_of("/x/lib/python3.11/site-packages/flask/app.py")) == "app"
    assert module_of("/usr/lib/python3.11/socket.py") is None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_c_ceiling_compiles_and_answers():
    binary = catalogue.ceiling_binary()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(binary), "--host", "127.0.0.1", "--port", str(port)],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first = conn.recv(4096)
            assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"Hello World!")
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            assert b"Connection: close" in data and data.endswith(b"Hello World!")
    finally:
        proc.kill()
        proc.wait()
