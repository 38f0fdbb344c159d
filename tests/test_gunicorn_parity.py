"""Moving from gunicorn, as a new user would: the very same command line and the very
same gunicorn.conf.py, first under real gunicorn, then under wsgiloop, against the same
app.  What the app sees and what the access log says must match."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE_APP = '''
import json, os

def app(environ, start_response):
    # PEP 3333 lets CONTENT_TYPE and CONTENT_LENGTH be empty or absent: gunicorn leaves
    # them out, wsgiloop sends them empty; "or None" reads both the same way.
    seen = {key: environ.get(key) or None for key in (
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
        "HTTP_HOST", "HTTP_X_PROBE", "CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR",
        "wsgi.url_scheme")}
    seen["body"] = environ["wsgi.input"].read().decode()
    seen["greeting"] = os.environ.get("GREETING")
    seen["cwd"] = os.getcwd()
    body = json.dumps(seen, sort_keys=True).encode()
    start_response("201 Created", [("Content-Type", "application/json"),
                                   ("X-App", "probe")])
    return [body]
'''

CONFIG = '''
# A gunicorn.conf.py as teams write them.
import multiprocessing

bind = "127.0.0.1:{port}"
workers = 2
threads = 1
timeout = 30
graceful_timeout = 5
keepalive = 2
max_requests = 1000
max_requests_jitter = 50
chdir = "{site}"
raw_env = ["GREETING=from the config file"]
accesslog = "{access_log}"
access_log_format = ('%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s %(B)s %(m)s %(U)s ?%(q)s %(H)s '
                     '"%(f)s" "%(a)s" %({{x-probe}}i)s %({{x-app}}o)s %({{wsgi.url_scheme}}e)s '
                     '%({{REMOTE_ADDR}}e)s')
loglevel = "info"
forwarded_allow_ips = "127.0.0.1"
proxy_allow_ips = "127.0.0.1"
limit_request_line = 4094
limit_request_fields = 100
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def _exchange(port: int) -> list[tuple[int, dict, dict]]:
    """The same requests against either server; status, chosen headers, app's view."""
    results = []
    requests = [
        ("GET", "/hello/w%C3%B6rld?x=1&y=%20z", None, {"X-Probe": "one"}),
        ("POST", "/form", b"a=1&b=2", {"Content-Type": "application/x-www-form-urlencoded",
                                       "X-Probe": "two", "User-Agent": "parity/1.0"}),
        ("HEAD", "/head", None, {}),
    ]
    for method, path, body, headers in requests:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                         headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
            results.append((response.status,
                            # (not Content-Length: gunicorn chunks what wsgiloop
                            # sends with a length when it holds the whole body)
                            {"content-type": response.headers["Content-Type"],
                             "x-app": response.headers["X-App"]},
                            json.loads(data) if data else {}))
    return results


def _serve(argv: list[str], cwd: Path, port: int, access_log: Path
           ) -> tuple[list, list[str]]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("WSGILOOP_", "GUNICORN_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_until_serving(port, proc)
        results = _exchange(port)
    finally:
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, stderr
    lines = [line for line in access_log.read_text().splitlines() if "/ready" not in line]
    access_log.unlink()
    return results, lines


@pytest.fixture
def project(tmp_path: Path) -> dict:
    """A project directory with the app, a site/ directory to chdir into, and a
    gunicorn.conf.py that names them."""
    (tmp_path / "site").mkdir()
    (tmp_path / "probe_parity.py").write_text(textwrap.dedent(PROBE_APP))
    port = _free_port()
    access_log = tmp_path / "access.log"
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent(CONFIG).format(
        port=port, site=tmp_path / "site", access_log=access_log))
    return {"dir": tmp_path, "port": port, "access_log": access_log}


def test_same_command_line_and_config_file_under_gunicorn_and_wsgiloop(project):
    # The command line a team types today: the config file, the app module on
    # --pythonpath, and a worker count and log level over the file's.
    args = ["-c", "gunicorn.conf.py", "--pythonpath", str(project["dir"]),
            "-w", "3", "--log-level", "warning", "probe_parity:app"]
    gunicorn = [sys.executable, "-m", "gunicorn", *args]
    wsgiloop = [sys.executable, "-m", "wsgiloop", *args]
    theirs, their_log = _serve(gunicorn, project["dir"], project["port"],
                               project["access_log"])
    ours, our_log = _serve(wsgiloop, project["dir"], project["port"],
                           project["access_log"])

    for mine, reference in zip(ours, theirs, strict=True):
        assert mine == reference
    assert theirs[0][2]["PATH_INFO"] == "/hello/w\u00c3\u00b6rld"  # PEP 3333: latin-1
    assert theirs[1][2]["body"] == "a=1&b=2"
    assert theirs[0][2]["greeting"] == "from the config file"
    assert theirs[0][2]["cwd"] == str(project["dir"] / "site")

    # Several workers append to one file: the order of their lines is the order in which
    # the workers wrote, not the order of the requests.  Compare them as multisets.
    assert len(our_log) == len(their_log) == 3
    assert sorted(our_log) == sorted(their_log)
    [hello] = [line for line in our_log if '"GET /hello/' in line]
    assert re.fullmatch(r'127\.0\.0\.1 - - "GET /hello/w%C3%B6rld\?x=1&y=%20z HTTP/1\.1" '
                        r'201 (\d+) \1 GET /hello/w\u00c3\u00b6rld \?x=1&y=%20z HTTP/1\.1 "-" '
                        r'"Python-urllib/3\.\d+" one probe http 127\.0\.0\.1',
                        hello), hello
