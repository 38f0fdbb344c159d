"""--reload: editing a source file restarts the workers; a syntax error does not.  Both
engines: inotify (watchfiles, in the test extra) and polling."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT, ServerProcess

APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{version}"]
'''


def fetch(server: ServerProcess) -> bytes:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.request("GET", "/")
    body = conn.getresponse().read()
    conn.close()
    return body


def write(path: Path, text: str) -> None:
    path.write_text(text)
    stamp = time.time() + 1  # a distinct mtime even on coarse file systems
    os.utime(path, (stamp, stamp))


def wait_for_body(server: ServerProcess, expected: bytes, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    body = b""
    while time.monotonic() < deadline:
        try:
            body = fetch(server)
        except OSError:
            body = b""
        if body == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"still {body!r}, not {expected!r}:\n{server.log}")


@pytest.mark.parametrize("engine", ["inotify", "poll"])
def test_edit_reloads_and_a_syntax_error_keeps_the_old_workers(tmp_path: Path,
                                                               engine: str) -> None:
    module = tmp_path / "reload_me.py"
    write(module, APP.format(version="one"))
    with ServerProcess("reload_me:app", "--reload", "--reload-engine", engine,
                       cwd=tmp_path) as server:
        server.wait_for_log(rf"reloading on changes \({engine}\)")
        assert fetch(server) == b"one"
        write(module, APP.format(version="two"))
        wait_for_body(server, b"two")
        server.wait_for_log(r"reloading: .*reload_me\.py changed")

        write(module, "def app(environ, start_response:\n")  # broken
        server.wait_for_log(r"not reloading: syntax error in .*reload_me\.py:1")
        for _ in range(5):
            assert fetch(server) == b"two"  # the old workers keep serving
            time.sleep(0.2)

        write(module, APP.format(version="three"))
        wait_for_body(server, b"three")
        assert "Traceback" not in server.log


TEMPLATE_APP = '''
import pathlib

GREETING = (pathlib.Path(__file__).parent / "templates" / "greeting.txt").read_bytes()

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [GREETING]
'''


@pytest.mark.parametrize("engine", ["inotify", "poll"])
def test_reload_extra_file(tmp_path: Path, engine: str) -> None:
    """--reload-extra-file (gunicorn's reload_extra_files): a change to a non-Python file
    restarts the workers too; other non-Python files do not."""
    (tmp_path / "templates").mkdir()
    write(tmp_path / "templates" / "greeting.txt", "hello")
    write(tmp_path / "templates" / "other.txt", "x")
    write(tmp_path / "extra_app.py", TEMPLATE_APP)
    with ServerProcess("extra_app:app", "--reload", "--reload-engine", engine,
                       "--reload-extra-file", "templates/greeting.txt",
                       cwd=tmp_path) as server:
        server.wait_for_log(rf"reloading on changes \({engine}\).*greeting\.txt")
        assert fetch(server) == b"hello"
        write(tmp_path / "templates" / "other.txt", "y")  # not watched
        time.sleep(2.5)
        assert "other.txt changed" not in server.log
        write(tmp_path / "templates" / "greeting.txt", "hello again")
        wait_for_body(server, b"hello again")
        server.wait_for_log(r"reloading: .*greeting\.txt changed")


def test_inotify_engine_without_watchfiles_is_one_clear_error(tmp_path: Path) -> None:
    # A sitecustomize that hides watchfiles, as if it were not installed.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['watchfiles'] = None\n")
    write(tmp_path / "reload_me.py", APP.format(version="one"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "wsgiloop", "reload_me:app", "--bind",
                             "127.0.0.1:0", "--reload", "--reload-engine", "inotify"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "wsgiloop: error: --reload-engine: invalid value 'inotify': 'inotify' needs the "
        "watchfiles package (pip install watchfiles)"], result.stderr
