"""--user, --group and --umask, and process titles, on real processes."""

from __future__ import annotations

import http.client
import json
import os
import pwd

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
    pytest.importorskip("setproctitle")
    with ServerProcess("apps:combined", "-w", "2") as s:
        with open(f"/proc/{s.proc.pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"wsgiloop: master [apps:combined]")
        with open(f"/proc/{s.worker_pid}/cmdline", "rb") as f:
            assert f.read().startswith(b"wsgiloop: worker ")


def test_environ_reports_multiprocess_with_several_workers():
    with ServerProcess("apps:combined", "-w", "2") as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
        conn.request("GET", "/environ")
        env = json.loads(conn.getresponse().read())
        conn.close()
        assert env["wsgi.multiprocess"] is True
