"""--reload: editing a source file restarts the workers; a syntax error does not."""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

from support import ServerProcess

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


def test_edit_reloads_and_a_syntax_error_keeps_the_old_workers(tmp_path: Path) -> None:
    module = tmp_path / "reload_me.py"
    write(module, APP.format(version="one"))
    with ServerProcess("reload_me:app", "--reload", cwd=tmp_path) as server:
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
