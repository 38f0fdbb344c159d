"""--user, --group and --umask, and process titles, on real processes."""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import shutil
import tempfile

import pytest
from support import ServerProcess


def _status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/{pid}/status")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_and_group_are_switched_after_binding():
    nobody = pwd.getpwnam("nobody")
    # What matters is that the sockets were bound first and every process then runs as the
    # given user and group.  --preload: this machine's Python lives under /root, which
    # nobody cannot read, so the app is imported before the switch.
    with ServerProcess("apps:combined", "--user", "nobody", "--group", str(nobody.pw_gid),
                       "--preload") as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
        conn.request("GET", "/environ")
        assert conn.getresponse().status == 200
        conn.close()
        for pid in (s.proc.pid, s.worker_pid):
            uids = _status_field(pid, "Uid").split()
            gids = _status_field(pid, "Gid").split()
            assert set(uids) == {str(nobody.pw_uid)}, (pid, uids)
            assert set(gids) == {str(nobody.pw_gid)}, (pid, gids)


_WHOAMI_APP = """
import json, os

def application(environ, start_response):
    body = json.dumps({"uid": os.getuid(), "gid": os.getgid(),
                       "groups": sorted(os.getgroups())}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


@pytest.fixture
def world_readable_app():
    """A directory outside /root (readable by nobody) holding whoami_app.py."""
    directory = tempfile.mkdtemp(prefix="wsgiloop-user-", dir="/tmp")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "whoami_app.py")
    with open(path, "w") as f:
        f.write(_WHOAMI_APP)
    os.chmod(path, 0o644)
    yield directory
    shutil.rmtree(directory)


def _whoami(s: ServerProcess) -> dict:
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    data = json.loads(response.read())
    conn.close()
    return data


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_workers_import_the_app_as_the_new_user(world_readable_app):
    """Without --preload the worker imports the app after the switch, as gunicorn's do:
    by name (``-u nobody -g nogroup``), supplementary groups dropped."""
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    with ServerProcess("whoami_app:application", "-u", "nobody", "-g", group,
                       "--chdir", world_readable_app) as s:
        assert _whoami(s) == {"uid": nobody.pw_uid, "gid": nobody.pw_gid,
                              "groups": sorted(os.getgrouplist("nobody", nobody.pw_gid))}
        assert _status_field(s.proc.pid, "Uid").split()[0] == str(nobody.pw_uid)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching groups needs root")
def test_group_alone_keeps_the_user(world_readable_app):
    nobody = pwd.getpwnam("nobody")
    with ServerProcess("whoami_app:application", "--group", str(nobody.pw_gid),
                       "--chdir", world_readable_app) as s:
        seen = _whoami(s)
    assert seen["uid"] == os.getuid()
    assert seen["gid"] == nobody.pw_gid


def test_umask_applies_to_the_server_processes():
    with ServerProcess("apps:combined", "--umask", "027") as s:
        assert _status_field(s.worker_pid, "Umask") == "0027"
        assert _status_field(s.proc.pid, "Umask") == "0027"


def test_unknown_user_is_one_clear_error():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "wsgiloop", "apps:combined", "--bind",
                             "127.0.0.1:0", "--user", "no-such-user-xyz"],
                            capture_output=True, text=True, timeout=20,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [os.path.dirname(__file__),
                                 os.path.dirname(os.path.dirname(__file__))])})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsgiloop: error:"), result.stderr
    assert "no-such-user-xyz" in lines[0]


def test_process_titles_with_setproctitle():
    with ServerProcess("apps:combined", "-w", "2") as s:
        with open(f"/proc/{s.proc.pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"wsgiloop: master [apps:combined]")
        with open(f"/proc/{s.worker_pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"wsgiloop: worker ")
    with ServerProcess("apps:combined", "-n", "billing-api") as s:  # gunicorn's proc_name
        with open(f"/proc/{s.proc.pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"wsgiloop: master [billing-api]")
        with open(f"/proc/{s.worker_pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"wsgiloop: worker 1 [billing-api]")


def test_environ_reports_multiprocess_with_several_workers():
    with ServerProcess("apps:combined", "-w", "2") as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
        conn.request("GET", "/environ")
        env = json.loads(conn.getresponse().read())
        conn.close()
        assert env["wsgi.multiprocess"] is True
