"""Logging configuration end to end: real servers (master and forked workers) with log
configs (ini, dict in a Python config file, JSON file) routing records to files, syslog to
a UDP listener and a unix datagram socket the test binds, the JSON log format parsed line
by line, USR1 reopening the config's files, and bad log configs refused in one line."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import ROOT, ServerProcess, server_env

from wsgiloop.config import ConfigError, load_settings
from wsgiloop.logsetup import parse_syslog_address

SECRET = "kaboom-7d1e"  # what tests/apps.py's /raise raises


def request(server: ServerProcess, target: str, headers: dict[str, str] | None = None
            ) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# -- log configs -------------------------------------------------------------------------

INI = """
    [loggers]
    keys=root,error,access

    [handlers]
    keys=errors,accesses

    [formatters]
    keys=plain

    [logger_root]
    level=WARNING
    handlers=

    [logger_error]
    level=INFO
    handlers=errors
    propagate=0
    qualname=gunicorn.error

    [logger_access]
    level=INFO
    handlers=accesses
    propagate=0
    qualname=gunicorn.access

    [handler_errors]
    class=FileHandler
    formatter=plain
    args=('%(here)s/error.log', 'a')

    [handler_accesses]
    class=FileHandler
    formatter=plain
    args=('%(here)s/access.log', 'a')

    [formatter_plain]
    format=%(name)s %(process)d %(levelname)s %(message)s
"""


def test_ini_log_config_written_for_gunicorn_routes_master_and_worker_records(tmp_path):
    """gunicorn's logconfig: ``gunicorn.error``/``gunicorn.access`` sections, ``%(here)s``
    in paths; both loggers go to the config's files, in the master and both workers, and
    an application error leaves its traceback there (never in the response)."""
    config = write(tmp_path / "logging.ini", INI)
    errors, accesses = tmp_path / "error.log", tmp_path / "access.log"
    with ServerProcess("apps:combined", "-w", "2", "--log-config", str(config),
                       log_file=errors) as server:
        assert request(server, "/environ?probe=ini", {"User-Agent": "ini/1"})[0] == 200
        status, body = request(server, "/raise")
        assert status == 500 and SECRET.encode() not in body
        assert server.stop() == 0
        stderr = server.log
    error_text, access_text = errors.read_text(), accesses.read_text()
    master = server.pid
    assert re.search(rf"^wsgiloop\.error {master} INFO Listening at: ", error_text, re.M)
    assert re.search(rf"^wsgiloop\.error {master} INFO master {master} stopped", error_text,
                     re.M)
    workers = {int(pid) for pid in re.findall(r"worker \d+ \(pid (\d+)\) serving",
                                              error_text)}
    assert len(workers) == 2 and master not in workers
    failing = re.search(r"^wsgiloop\.error (\d+) ERROR error handling GET /raise\n"
                        r"Traceback \(most recent call last\):\n", error_text, re.M)
    assert failing and int(failing.group(1)) in workers, error_text
    assert f"RuntimeError: {SECRET} secret detail" in error_text
    line = re.search(r'^wsgiloop\.access (\d+) INFO 127\.0\.0\.1 - - \[.+\] '
                     r'"GET /environ\?probe=ini HTTP/1\.1" 200 \d+ "-" "ini/1"$',
                     access_text, re.M)
    assert line and int(line.group(1)) in workers, access_text
    assert '"GET /raise HTTP/1.1" 500' in access_text
    assert "Listening" not in stderr and "GET /raise" not in stderr  # all in the files


def test_dict_log_config_in_a_gunicorn_config_file_and_usr1_reopens_its_file(tmp_path):
    """gunicorn's ``logconfig_dict`` (no ``version``: gunicorn's defaults fill it in)
    names only ``gunicorn.access``, with wsgiloop's JSON formatter: the access log goes
    to its file (no --access-log needed), the error log stays on stderr.  USR1 reopens
    the config's file in the worker; the renamed file gets nothing more."""
    accesses, moved = tmp_path / "access.log", tmp_path / "access.log.1"
    write(tmp_path / "gunicorn.conf.py", f"""
        workers = 1
        logconfig_dict = {{
            "formatters": {{"json": {{"()": "wsgiloop.logsetup.JSONFormatter"}}}},
            "handlers": {{"file": {{"class": "logging.FileHandler", "formatter": "json",
                                    "filename": {str(accesses)!r}}}}},
            "loggers": {{"gunicorn.access": {{"handlers": ["file"], "level": "INFO",
                                             "propagate": False}}}},
        }}
    """)
    with ServerProcess("apps:combined", "--log-format", "json", cwd=tmp_path) as server:
        assert request(server, "/environ?before")[0] == 200
        wait_until(lambda: "before" in accesses.read_text(), "the first access line")
        accesses.rename(moved)
        server.signal(signal.SIGUSR1)
        n = 0

        def reached_new_file() -> bool:
            nonlocal n
            n += 1
            assert request(server, f"/environ?after-{n}")[0] == 200
            return accesses.exists() and f"after-{n}" in accesses.read_text()

        wait_until(reached_new_file, "an access line in the reopened file")
        assert request(server, "/environ?last")[0] == 200
        assert server.stop() == 0
    new_lines = [json.loads(line) for line in accesses.read_text().splitlines()]
    old_lines = [json.loads(line) for line in moved.read_text().splitlines()]
    assert new_lines[-1]["query"] == "last"
    assert all(entry["query"] != "last" for entry in old_lines)
    assert old_lines[0]["query"] == "before"
    # The error log was not named by the config: wsgiloop's own handler, in JSON.
    errors = [json.loads(line) for line in server.log.splitlines()]
    assert any(e["message"].startswith("Listening at: ") for e in errors)


def _access_to(path: Path, handler_class: str = "logging.FileHandler") -> str:
    return (f"logconfig_dict = {{'handlers': {{'h': {{'class': {handler_class!r}, "
            f"'filename': {str(path)!r}}}}}, 'loggers': {{'gunicorn.access': "
            f"{{'handlers': ['h'], 'level': 'INFO'}}}}}}\n")


def test_hup_applies_a_changed_log_config_and_keeps_the_old_one_when_it_is_bad(tmp_path):
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(_access_to(first))
    with ServerProcess("apps:combined", "-w", "1", cwd=tmp_path) as server:
        assert request(server, "/environ?one")[0] == 200
        config.write_text(_access_to(second, "no.such.Handler"))
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"HUP: cannot reload the settings \(--log-config-dict: cannot "
                            r"apply it: Unable to configure handler 'h'")
        assert request(server, "/environ?two")[0] == 200
        wait_until(lambda: "?two" in first.read_text(), "the old config to keep working")
        config.write_text(_access_to(second))
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"HUP: starting generation")
        n = 0

        def reached_second() -> bool:
            nonlocal n
            n += 1
            assert request(server, f"/environ?three-{n}")[0] == 200
            return second.exists() and f"three-{n}" in second.read_text()

        wait_until(reached_second, "the new generation's access lines in the new file")
        assert server.stop() == 0
    # Until the new generation serves, the old worker writes where it did.
    assert "?one" in first.read_text() and f"?three-{n} " not in first.read_text()


def test_json_log_config_file_with_the_error_log_only(tmp_path):
    """gunicorn's ``logconfig_json``: a JSON dictConfig file routes ``wsgiloop.error``
    to a file (WARNING and up) and to stderr (INFO and up); without --access-log nor a
    config naming it, the access log stays off."""
    errors = tmp_path / "errors.log"
    config = tmp_path / "logging.json"
    config.write_text(json.dumps({
        "version": 1,
        "formatters": {"f": {"format": "%(levelname)s|%(name)s|%(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(errors),
                              "formatter": "f", "level": "WARNING"},
                     "console": {"class": "logging.StreamHandler", "formatter": "f",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {"wsgiloop.error": {"handlers": ["file", "console"], "level": "INFO",
                                       "propagate": False}},
    }))
    with ServerProcess("apps:combined", "-w", "1", "--log-config-json", str(config),
                       "--access-log", "") as server:
        assert request(server, "/raise")[0] == 500
        assert request(server, "/environ?x")[0] == 200
        wait_until(lambda: errors.exists() and SECRET in errors.read_text(), "the error")
        assert server.stop() == 0
        out = server.stdout
        stderr = server.log
    text = errors.read_text()
    assert text.startswith("ERROR|wsgiloop.error|error handling GET /raise\n"), text
    assert "INFO|" not in text  # the config's handler levels
    assert re.match(r"INFO\|wsgiloop\.error\|Listening at: ", stderr), stderr
    assert "GET /environ" not in text + out


def test_log_config_dict_as_json_text_on_the_command_line(tmp_path):
    accesses = tmp_path / "a.log"
    config = {"version": 1,
              "handlers": {"h": {"class": "logging.FileHandler", "filename": str(accesses)}},
              "loggers": {"wsgiloop.access": {"handlers": ["h"], "level": "INFO"}}}
    with ServerProcess("apps:combined", "--log-config-dict", json.dumps(config)) as server:
        assert request(server, "/environ?cli-dict")[0] == 200
        assert server.stop() == 0
    assert '"GET /environ?cli-dict HTTP/1.1" 200' in accesses.read_text()


# -- syslog ------------------------------------------------------------------------------


@contextmanager
def datagrams(sock: socket.socket) -> Iterator[list[bytes]]:
    """Every datagram ``sock`` receives while the block runs (and shortly after)."""
    received: list[bytes] = []
    sock.settimeout(0.2)
    done = threading.Event()

    def pump() -> None:
        while not done.is_set():
            try:
                received.append(sock.recv(65536))
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        done.set()
        thread.join(5)
        sock.close()


SYSLOG_LINE = re.compile(rb"<(\d+)>([^:\s]+): (.*)\x00", re.S)


def parse_syslog(data: bytes) -> tuple[int, int, str, str]:
    """``(facility, severity, tag, message)`` of a line as Python's SysLogHandler sends
    it: ``<PRI>TAG: MESSAGE`` and a NUL."""
    m = SYSLOG_LINE.fullmatch(data)
    assert m, data
    priority = int(m.group(1))
    return priority >> 3, priority & 7, m.group(2).decode(), m.group(3).decode()


def test_syslog_over_udp_error_and_access_log_with_facility_and_prefix(tmp_path):
    """--log-syslog: the error log goes to syslog (and still to stderr), the access log
    too although there is no --access-log (gunicorn's redirect), tagged
    ``wsgiloop.PREFIX.error|access``, with the facility asked for and the level's
    severity."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with datagrams(listener) as received:
        with ServerProcess("apps:combined", "-w", "2", "--log-syslog",
                           "--log-syslog-to", f"udp://127.0.0.1:{port}",
                           "--log-syslog-facility", "local3",
                           "--log-syslog-prefix", "shop") as server:
            assert request(server, "/environ?via-syslog")[0] == 200
            assert request(server, "/raise")[0] == 500
            wait_until(lambda: sum(b"access" in d for d in received) >= 2, "access lines")
            assert server.stop() == 0
            stderr = server.log
        wait_until(lambda: any(b"master " in d and b" stopped" in d for d in received),
                   "the master's last line")
    lines = [parse_syslog(d) for d in received]
    assert {facility for facility, *_ in lines} == {19}  # local3
    access = [(sev, msg) for _, sev, tag, msg in lines if tag == "wsgiloop.shop.access"]
    errors = [(sev, msg) for _, sev, tag, msg in lines if tag == "wsgiloop.shop.error"]
    assert len(access) + len(errors) == len(lines)
    assert any(sev == 6 and re.fullmatch(r'\[\d+\] 127\.0\.0\.1 - - \[.+\] "GET '
                                         r'/environ\?via-syslog HTTP/1\.1" 200 \d+ "-" .*',
                                         msg) for sev, msg in access), access
    assert any(sev == 6 and re.fullmatch(rf"\[{server.pid}\] Listening at: .*", msg)
               for sev, msg in errors), errors
    [(severity, failure)] = [(s, m) for s, m in errors if "GET /raise" in m]
    assert severity == 3 and failure.endswith(f"RuntimeError: {SECRET} secret detail")
    assert "Listening at: " in stderr and "error handling GET /raise" in stderr


@contextmanager
def stream_messages(listener: socket.socket) -> Iterator[list[bytes]]:
    """Every NUL-terminated message received on the connections ``listener`` accepts
    while the block runs (and shortly after): syslog over TCP as Python sends it."""
    received: list[bytes] = []
    listener.listen(8)
    listener.settimeout(0.2)
    done = threading.Event()

    def read(conn: socket.socket) -> None:
        buffer = b""
        conn.settimeout(0.2)
        with conn:
            while not done.is_set():
                try:
                    data = conn.recv(65536)
                except (TimeoutError, OSError):
                    continue
                if not data:
                    break
                buffer += data
                *messages, buffer = buffer.split(b"\0")
                received.extend(message + b"\0" for message in messages)

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=read, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        time.sleep(0.3)
        done.set()
        thread.join()
        listener.close()


def test_syslog_over_tcp(tmp_path):
    """tcp://HOST:PORT: the same lines over a stream, each ended by a NUL, from the
    master and the workers alike."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with stream_messages(listener) as received:
        with ServerProcess("apps:combined", "-w", "2", "--log-syslog",
                           "--log-syslog-to", f"tcp://127.0.0.1:{port}",
                           "--log-syslog-prefix", "tcpshop") as server:
            assert request(server, "/environ?via-tcp")[0] == 200
            assert request(server, "/raise")[0] == 500
            wait_until(lambda: any(b"via-tcp" in m for m in received), "the access line")
            wait_until(lambda: any(b"error handling GET /raise" in m for m in received),
                       "the error line")
            assert server.stop() == 0
    lines = [parse_syslog(m) for m in received]
    assert {tag for _, _, tag, _ in lines} == {"wsgiloop.tcpshop.access",
                                              "wsgiloop.tcpshop.error"}
    assert any(tag.endswith("access") and severity == 6 and '"GET /environ?via-tcp' in msg
               for _, severity, tag, msg in lines), lines
    [failure] = [(sev, msg) for _, sev, tag, msg in lines
                 if tag.endswith("error") and "GET /raise" in msg]
    assert failure[0] == 3 and failure[1].endswith(f"RuntimeError: {SECRET} secret detail")
    assert any(re.fullmatch(rf"\[{server.pid}\] Listening at: .*", msg)
               for *_, msg in lines), lines


def test_syslog_to_a_unix_datagram_socket_without_the_access_log(tmp_path):
    """unix://PATH (datagram, as /dev/log), default facility ``user``, and
    --disable-redirect-access-to-syslog: the access log stays on stdout only."""
    path = str(tmp_path / "log.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    with datagrams(listener) as received:
        with ServerProcess("apps:combined", "-w", "1", "--name", "billing", "--log-syslog",
                           "--log-syslog-to", f"unix://{path}", "--access-log", "-",
                           "--disable-redirect-access-to-syslog") as server:
            assert request(server, "/environ?unix")[0] == 200
            wait_until(lambda: "GET /environ?unix" in server.stdout, "the access line")
            assert server.stop() == 0
        wait_until(lambda: any(b" stopped" in d for d in received), "the last line")
    lines = [parse_syslog(d) for d in received]
    assert {(facility, tag) for facility, _, tag, _ in lines} == {
        (1, "wsgiloop.billing.error")}
    assert not any("GET /environ" in msg for *_, msg in lines)


# -- JSON format -------------------------------------------------------------------------

ACCESS_FIELDS = ["time", "remote_addr", "method", "path", "query", "protocol", "status",
                 "bytes", "duration", "referer", "user_agent", "request_id"]
ERROR_FIELDS = ["time", "level", "logger", "message", "pid", "exc_info"]


def test_json_access_and_error_logs(tmp_path):
    """--log-format json: every line of both logs is one JSON object with the documented
    fields; an application error's traceback is in ``exc_info``, not in the response;
    what the application writes to ``wsgi.errors`` becomes records too."""
    errors, accesses = tmp_path / "error.log", tmp_path / "access.log"
    with ServerProcess("apps:combined", "-w", "2", "--log-format", "json",
                       "--error-log", str(errors), "--access-log", str(accesses),
                       log_file=errors) as server:
        status, _ = request(server, "/environ/%C3%A9t%C3%A9?a=1&b=%20",
                            {"Referer": "http://ref.example/", "User-Agent": "json/2",
                             "X-Request-ID": "req-42"})
        assert status == 200
        status, body = request(server, "/raise")
        assert status == 500 and SECRET.encode() not in body
        assert request(server, "/errors")[0] == 200  # writes to wsgi.errors
        assert server.stop() == 0
    started = time.time()
    access = [json.loads(line) for line in accesses.read_text().splitlines()]
    assert all(list(entry) == ACCESS_FIELDS for entry in access)
    first = next(e for e in access if e["path"].startswith("/environ"))
    assert first["path"] == "/environ/été" and first["query"] == "a=1&b=%20"
    assert (first["method"], first["protocol"], first["status"]) == ("GET", "HTTP/1.1", 200)
    assert (first["remote_addr"], first["referer"], first["user_agent"],
            first["request_id"]) == ("127.0.0.1", "http://ref.example/", "json/2", "req-42")
    assert isinstance(first["bytes"], int) and first["bytes"] > 0
    assert isinstance(first["duration"], float) and first["duration"] >= 0
    assert abs(_epoch(first["time"]) - started) < 600
    failed = next(e for e in access if e["path"] == "/raise")
    assert (failed["status"], failed["referer"], failed["request_id"]) == (500, None, None)

    records = [json.loads(line) for line in errors.read_text().splitlines()]
    assert all(list(record) == ERROR_FIELDS for record in records)
    assert {r["logger"] for r in records} == {"wsgiloop.error"}
    [failure] = [r for r in records if r["message"] == "error handling GET /raise"]
    assert failure["level"] == "ERROR" and failure["pid"] != server.pid
    assert failure["exc_info"].startswith("Traceback (most recent call last):\n")
    assert failure["exc_info"].endswith(f"RuntimeError: {SECRET} secret detail")
    [written] = [r for r in records if "wsgi.errors marker" in r["message"]]
    assert (written["message"], written["level"]) == ("wsgi.errors marker 51f0", "ERROR")
    listening = next(r for r in records if r["message"].startswith("Listening at: "))
    assert (listening["level"], listening["pid"], listening["exc_info"]) == (
        "INFO", server.pid, None)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


# -- refusals ----------------------------------------------------------------------------

BAD_INI = "[loggers]\nkeys=root\n"


@pytest.mark.parametrize("make,fragment", [
    (lambda d: ["--log-config", str(write(d / "bad.ini", BAD_INI))],
     "--log-config {d}/bad.ini: cannot apply it: missing 'formatters'"),
    (lambda d: ["--log-config", str(write(d / "bad.ini", "not ini"))],
     "--log-config {d}/bad.ini: not a logging config file: "),
    (lambda d: ["--log-config", str(d / "missing.ini")],
     "--log-config {d}/missing.ini: cannot read it: no such file or directory"),
    (lambda d: ["--log-config-json", str(write(d / "bad.json", '{"version": 1'))],
     "--log-config-json {d}/bad.json: not JSON: "),
    (lambda d: ["--log-config-json", str(write(d / "bad.json", json.dumps({
        "version": 1, "handlers": {"h": {"class": "logging.FileHandler",
                                         "filename": str(d / "no" / "dir.log")}}})))],
     "--log-config-json {d}/bad.json: cannot apply it: Unable to configure handler 'h': "),
    (lambda d: ["--log-config-dict", "[1]"],
     "--log-config-dict: invalid value '[1]': expected a JSON object"),
    (lambda d: ["--log-config-dict", '{"loggers": {"gunicorn.error": {}, '
                                     '"wsgiloop.error": {}}}'],
     "--log-config-dict: configures the logger 'wsgiloop.error' twice"),
    (lambda d: ["--log-syslog", "--log-syslog-to", f"unix://{d}/no.sock"],
     "--log-syslog-to unix://{d}/no.sock: cannot reach syslog: no such file or directory"),
    (lambda d: ["--log-syslog-to", "http://x"],
     "--log-syslog-to: invalid value 'http://x': unknown scheme 'http'"),
])
def test_a_bad_log_config_is_one_error_line_and_status_2(tmp_path, make, fragment):
    assert_refused(make(tmp_path), fragment.format(d=tmp_path))


@pytest.mark.parametrize("make,fragment", [
    (lambda d: ["--log-config", str(d / "missing.ini")],
     "--log-config {d}/missing.ini: cannot read it: "),
    (lambda d: ["--log-config", str(write(d / "bad.ini", "[formatters]\nkeys=x\n"))],
     "--log-config {d}/bad.ini: not a logging config file: no [loggers] section"),
    (lambda d: ["--log-config-json", str(write(d / "bad.json", "[]"))],
     "--log-config-json {d}/bad.json: expected a dict (a logging dictConfig), not list"),
])
def test_check_config_reads_the_log_config(tmp_path, make, fragment):
    assert_refused([*make(tmp_path), "--check-config"], fragment.format(d=tmp_path))


def assert_refused(args: list[str], message_start: str) -> None:
    result = subprocess.run([sys.executable, "-m", "wsgiloop", "apps:combined", "-b",
                             "127.0.0.1:0", *args], cwd=ROOT, env=server_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("wsgiloop: error: " + message_start), result.stderr


# -- settings ----------------------------------------------------------------------------


def test_gunicorn_logging_names_in_a_config_file(tmp_path):
    write(tmp_path / "gunicorn.conf.py", """
        logconfig = "log.ini"
        logconfig_json = "log.json"
        logconfig_dict = {"version": 1, "root": {"level": "INFO"}}
        syslog = True
        syslog_addr = "unix:///dev/log#dgram"
        syslog_prefix = "shop"
        syslog_facility = "LOCAL7"
        disable_redirect_access_to_syslog = True
    """)
    s, _ = load_settings(["app:app"], {}, cwd=tmp_path)
    assert (s.log_config, s.log_config_json) == ("log.ini", "log.json")
    assert s.log_config_dict == {"version": 1, "root": {"level": "INFO"}}
    assert (s.log_syslog, s.log_syslog_to, s.log_syslog_prefix, s.log_syslog_facility,
            s.disable_redirect_access_to_syslog) == (
        True, "unix:///dev/log#dgram", "shop", "local7", True)
    s, _ = load_settings(["app:app"], {"WSGILOOP_LOG_CONFIG_DICT": '{"version": 1}'},
                         cwd=tmp_path / "nowhere")
    assert s.log_config_dict == {"version": 1}
    write(tmp_path / "bad.py", "logconfig_dict = [1]\n")
    with pytest.raises(ConfigError, match=r"bad\.py: logconfig_dict: invalid value"):
        load_settings(["app:app", "-c", "bad.py"], {}, cwd=tmp_path)


@pytest.mark.parametrize("text,parsed", [
    ("udp://localhost:514", (socket.SOCK_DGRAM, ("localhost", 514))),
    ("udp://10.0.0.1", (socket.SOCK_DGRAM, ("10.0.0.1", 514))),
    ("tcp://[::1]:6514", (socket.SOCK_STREAM, ("::1", 6514))),
    ("tcp://", (socket.SOCK_STREAM, ("localhost", 514))),
    ("unix:///dev/log", (None, "/dev/log")),
    ("unix:///run/syslog#stream", (socket.SOCK_STREAM, "/run/syslog")),
    ("unix:///dev/log#dgram", (socket.SOCK_DGRAM, "/dev/log")),
])
def test_syslog_addresses(text, parsed):
    assert parse_syslog_address(text) == parsed


@pytest.mark.parametrize("text", ["localhost:514", "udp://h:port", "udp://h:70000",
                                  "unix://", "unix:///x#raw", "tcp://[::1"])
def test_bad_syslog_addresses(text):
    with pytest.raises(ValueError):
        parse_syslog_address(text)


def test_log_settings_in_toml(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [tool.wsgiloop]
        log-format = "json"
        log_syslog = true

        [tool.wsgiloop.log_config_dict]
        version = 1
        loggers = { "gunicorn.access" = { level = "INFO" } }
    """)
    s, _ = load_settings(["app:app"], {}, cwd=tmp_path)
    assert (s.log_format, s.log_syslog) == ("json", True)
    assert s.log_config_dict == {"version": 1, "loggers": {"gunicorn.access": {"level": "INFO"}}}
