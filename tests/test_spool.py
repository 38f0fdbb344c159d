"""Spooling request bodies (wsgiloop/spool.py) and what happens when a body cannot be
stored: the client is answered at once (507 for a full disk, 503 otherwise) with
``Connection: close``, the error log gets one line, and the worker goes on serving.

The failures are real ones, made by the kernel:

* a full disk (ENOSPC): a 64 KiB tmpfs mounted for the test as the spool directory
  (needs the right to mount, as root has; the tests are skipped without it);
* no descriptor left (EMFILE): the test application lowers its worker's soft
  RLIMIT_NOFILE to the lowest free descriptor number (``/nofile`` in ``tests/apps.py``),
  so the spool file cannot be opened, then raises it again (``/nofile-restore``).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, ServerProcess

from wsgiloop.spool import BodySpool

APP = "apps:limits_app"
SPOOL_LOG = "cannot spool the request body"


# -- BodySpool on its own ------------------------------------------------------------------


def test_small_body_stays_in_memory():
    spool = BodySpool(threshold=10)
    spool.write(b"abc")
    spool.write(b"defg")
    assert not spool.on_disk
    body, size = spool.finish()
    assert isinstance(body, io.BytesIO)
    assert (body.read(), size) == (b"abcdefg", 7)
    assert spool.finish() == (None, 0)  # empty again


def test_large_body_goes_to_an_unnamed_file_in_the_directory(tmp_path):
    spool = BodySpool(threshold=10, directory=str(tmp_path))
    spool.write(b"0123456789")
    assert not spool.on_disk
    spool.write(b"abc")
    assert spool.on_disk
    body, size = spool.finish()
    assert body is not None and not isinstance(body, io.BytesIO)
    target = os.readlink(f"/proc/self/fd/{body.fileno()}")
    assert target.startswith(str(tmp_path) + "/") and target.endswith("(deleted)"), target
    assert list(tmp_path.iterdir()) == []  # nothing left on disk under a name
    assert (body.tell(), body.read(), size) == (0, b"0123456789abc", 13)
    body.close()
    assert not spool.on_disk and spool.size == 0


def test_failure_to_make_the_file_raises_once_and_discards(tmp_path):
    spool = BodySpool(threshold=4, directory=str(tmp_path / "missing"))
    spool.write(b"1234")
    with pytest.raises(FileNotFoundError):
        spool.write(b"5")
    assert (spool.size, spool.on_disk) == (0, False)
    assert spool.finish() == (None, 0)
    spool.discard()  # harmless, again


def test_discard_closes_the_file(tmp_path):
    spool = BodySpool(threshold=0, directory=str(tmp_path))
    spool.write(b"x")
    file = spool._file
    assert file is not None
    spool.discard()
    assert file.closed and not spool.on_disk and spool.size == 0


# -- a full disk, for real: a tiny tmpfs ---------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs mounted for the test; skipped where mounting is not permitted."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                             str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def post(conn: http.client.HTTPConnection, path: str, body: bytes,
         headers: dict | None = None) -> http.client.HTTPResponse:
    conn.request("POST", path, body=body, headers=headers or {})
    response = conn.getresponse()
    response.read()
    return response


def assert_refused(response: http.client.HTTPResponse, status: int) -> None:
    assert response.status == status, (response.status, response.reason)
    assert response.getheader("Connection") == "close"


def assert_one_log_line(server: ServerProcess) -> None:
    log = server.log
    lines = [line for line in log.splitlines() if SPOOL_LOG in line]
    assert len(lines) == 1, log
    assert "Traceback" not in log, log


@pytest.mark.parametrize("how", ["--spool-dir", "TMPDIR"])
def test_full_disk_is_answered_507_at_once(small_tmpfs, how):
    """With the spool directory full, the client gets 507 and Connection: close at once
    (not a 408 after --body-timeout), the log one line, and the next client is served --
    with a body spooled to the same directory, now that the failed one's space is free.
    The directory is --spool-dir, or the system temp dir (from TMPDIR) by default."""
    args = ["--spool-threshold", "16k", "--body-timeout", "60"]
    env = None
    if how == "--spool-dir":
        args += ["--spool-dir", str(small_tmpfs)]
    else:
        env = {"TMPDIR": str(small_tmpfs)}
    with ServerProcess(APP, *args, env=env) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
        response = post(conn, "/upload", os.urandom(512 * 1024))
        assert_refused(response, 507)
        conn.close()
        server.wait_for_log(SPOOL_LOG)
        assert "No space left on device" in server.log

        body = os.urandom(40 * 1024)  # above the threshold, and fits in 64 KiB
        conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
        response = post(conn, "/upload", body)
        assert response.status == 200
        conn.close()
        assert_one_log_line(server)


def test_full_disk_after_100_continue_is_answered_507(small_tmpfs):
    """A body fetched when the application reads it (Expect: 100-continue) fails the same
    way: the application's read raises, and the client gets 507 with Connection: close."""
    with ServerProcess(APP, "--spool-threshold", "16k", "--body-timeout", "60",
                       "--spool-dir", str(small_tmpfs)) as server:
        body = os.urandom(512 * 1024)
        with socket.create_connection((server.host, server.port), timeout=15) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"HTTP/1.1 100 ")
            assert reader.readline() == b"\r\n"
            sock.sendall(body)
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            assert_refused(response, 507)
        server.wait_for_log(SPOOL_LOG)
        conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
        assert post(conn, "/upload", b"small").status == 200
        conn.close()
        assert_one_log_line(server)


# -- no descriptor left, for real: a lowered RLIMIT_NOFILE --------------------------------


def test_no_descriptor_for_the_spool_file_is_answered_503_at_once():
    with ServerProcess(APP, "--spool-threshold", "1k", "--body-timeout", "60") as server:
        control = http.client.HTTPConnection(server.host, server.port, timeout=15)
        upload = http.client.HTTPConnection(server.host, server.port, timeout=15)
        for conn in (control, upload):  # both connected and accepted before the limit
            conn.request("GET", "/")
            assert conn.getresponse().read()
        control.request("GET", "/nofile")
        assert control.getresponse().read()

        body = os.urandom(64 * 1024)
        response = post(upload, "/upload", body)
        assert_refused(response, 503)
        upload.close()
        server.wait_for_log(SPOOL_LOG)
        assert "Too many open files" in server.log

        control.request("GET", "/nofile-restore")
        assert control.getresponse().read()
        control.close()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
        response = post(conn, "/upload", body)  # a new connection, spooled again
        assert response.status == 200
        conn.close()
        assert_one_log_line(server)


def test_spooled_body_is_intact(tmp_path):
    """A body spooled to --spool-dir reaches the application whole."""
    body = os.urandom(300 * 1024)
    with ServerProcess(APP, "--spool-threshold", "16k", "--spool-dir", str(tmp_path)) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
        conn.request("POST", "/upload", body=body)
        response = conn.getresponse()
        data = response.read()
        conn.close()
    assert response.status == 200
    assert hashlib.sha256(body).hexdigest().encode() in data


# -- --spool-dir is checked at start-up ----------------------------------------------------


def start(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return subprocess.run([sys.executable, "-m", "wsgiloop", APP, "--bind", "127.0.0.1:0",
                           *args], capture_output=True, text=True, env=env, timeout=60,
                          cwd=ROOT)


def _bad_dirs(tmp_path: Path) -> list[tuple[str, str]]:
    a_file = tmp_path / "file"
    a_file.write_text("")
    return [(str(tmp_path / "missing"), "no such directory"),
            (str(a_file), "not a directory")]


@pytest.mark.parametrize("case", [0, 1])
def test_bad_spool_dir_is_one_line_and_exit_2(tmp_path, case):
    directory, reason = _bad_dirs(tmp_path)[case]
    result = start("--spool-dir", directory)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"wsgiloop: error: --spool-dir {directory}: {reason}"], result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_spool_dir_is_one_line_and_exit_2():
    """/sys is a directory nobody, root included, can create a file in."""
    if not os.path.isdir("/sys"):
        pytest.skip("no /sys")
    result = start("--spool-dir", "/sys")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("wsgiloop: error: --spool-dir /sys: cannot create a file "
                                "in it: "), errors
    assert "Traceback" not in result.stderr
