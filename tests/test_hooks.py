"""gunicorn's server hooks from a gunicorn.conf.py, on a real master and real workers:
each hook runs in the right process, at the right point, with gunicorn's arguments."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import textwrap
import time
from pathlib import Path

import pytest
import trustme
from support import ServerProcess

APP = '''
def app(environ, start_response):
    if environ["PATH_INFO"] == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["PATH_INFO"].encode()]
'''

# Every hook appends one JSON line to hooks.jsonl: its name, the process it ran in and
# what it was given.
CONFIG = '''
import json, os

workers = 2
graceful_timeout = 3

def _note(name, **fields):
    with open({log!r}, "a") as f:
        f.write(json.dumps({{"hook": name, "process": os.getpid(), **fields}}) + "\\n")

def on_starting(server):
    _note("on_starting", server=server.pid, workers=server.cfg.workers)

def when_ready(server):
    server.log.info("when_ready says hello")
    _note("when_ready", server=server.pid)

def on_reload(server):
    _note("on_reload", server=server.pid)

def pre_fork(server, worker):
    _note("pre_fork", age=worker.age)

def post_fork(server, worker):
    _note("post_fork", age=worker.age, pid=worker.pid, ppid=worker.ppid, server=server.pid)

def post_worker_init(worker):
    _note("post_worker_init", age=worker.age, pid=worker.pid)

def pre_request(worker, req):
    if req.path == "/raise":
        raise RuntimeError("a broken pre_request hook")
    _note("pre_request", pid=worker.pid, method=req.method, path=req.path, uri=req.uri,
          query=req.query, headers=dict(req.headers))

def post_request(worker, req, environ, resp):
    _note("post_request", pid=worker.pid, path=req.path, status=resp.status,
          code=resp.status_code, sent=resp.sent, path_info=environ["PATH_INFO"])

def child_exit(server, worker):
    _note("child_exit", age=worker.age, pid=worker.pid)

def worker_exit(server, worker):
    _note("worker_exit", age=worker.age, pid=worker.pid)

def nworkers_changed(server, new_value, old_value):
    _note("nworkers_changed", new=new_value, old=old_value)

def on_exit(server):
    _note("on_exit", server=server.pid)
'''


def notes(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(path: Path, predicate, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = notes(path)
        if predicate(seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not seen in time: {notes(path)}")


def get(server: ServerProcess, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    return exchange(server, path, headers)[:2]


def exchange(server: ServerProcess, path: str, headers: dict | None = None
             ) -> tuple[int, bytes, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response.headers


def named(seen: list[dict], hook: str) -> list[dict]:
    return [n for n in seen if n["hook"] == hook]


def test_the_hooks_of_a_gunicorn_config_file(tmp_path: Path) -> None:
    log = tmp_path / "hooks.jsonl"
    (tmp_path / "hooked_app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "gunicorn.conf.py").write_text(CONFIG.format(log=str(log)))
    with ServerProcess("hooked_app:app", cwd=tmp_path) as server:
        master = server.proc.pid
        seen = wait_for(log, lambda s: len(named(s, "post_worker_init")) == 2)
        # The master's start: on_starting, when_ready and the first worker count, before
        # any worker is forked; each worker: pre_fork (master), post_fork, then
        # post_worker_init (the worker itself).
        assert [n["hook"] for n in seen[:3]] == ["on_starting", "when_ready",
                                                 "nworkers_changed"]
        assert seen[0] == {"hook": "on_starting", "process": master, "server": master,
                           "workers": 2}
        assert (seen[2]["new"], seen[2]["old"]) == (2, None)
        server.wait_for_log(r"when_ready says hello")
        for age in (1, 2):
            pre = [n for n in named(seen, "pre_fork") if n["age"] == age]
            post = [n for n in named(seen, "post_fork") if n["age"] == age]
            init = [n for n in named(seen, "post_worker_init") if n["age"] == age]
            assert len(pre) == len(post) == len(init) == 1
            assert pre[0]["process"] == master
            worker_pid = post[0]["pid"]
            assert post[0]["process"] == worker_pid != master
            assert (post[0]["ppid"], post[0]["server"]) == (master, master)
            assert init[0]["process"] == init[0]["pid"] == worker_pid
            assert seen.index(pre[0]) < seen.index(post[0]) < seen.index(init[0])
        server.wait_for_log(r"worker 1 \(pid \d+\) serving")
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")
        assert sorted(n["pid"] for n in named(seen, "post_fork")) == sorted(server.worker_pids())

        # pre_request and post_request around each request, in the worker serving it.
        status, body, headers = exchange(server, "/hello?x=1", {"X-Probe": "p"})
        assert (status, body) == (200, b"hello from /hello")
        # The hooks leave the response as it was: a list is still sent with its length.
        assert headers["Content-Length"] == str(len(body))
        assert headers["Transfer-Encoding"] is None
        seen = wait_for(log, lambda s: named(s, "post_request"))
        pre, = named(seen, "pre_request")
        post, = named(seen, "post_request")
        assert (pre["method"], pre["path"], pre["uri"], pre["query"]) == \
            ("GET", "/hello", "/hello?x=1", "x=1")
        assert pre["headers"]["X-PROBE"] == "p"
        assert post == {"hook": "post_request", "process": pre["process"],
                        "pid": pre["process"], "path": "/hello", "status": "200 OK",
                        "code": 200, "sent": len(body), "path_info": "/hello"}
        assert pre["process"] in server.worker_pids()

        # A file response still goes out whole, and post_request counts its bytes.
        status, body = get(server, "/file")
        assert (status, body) == (200, (tmp_path / "hooked_app.py").read_bytes())
        seen = wait_for(log, lambda s: len(named(s, "post_request")) == 2)
        assert named(seen, "post_request")[-1]["sent"] == len(body)

        # A hook that raises is logged with its traceback; the request is still served.
        status, body = get(server, "/raise")
        assert (status, body) == (200, b"hello from /raise")
        server.wait_for_log(r"error in the pre_request hook")
        assert "RuntimeError: a broken pre_request hook" in server.log

        # TTIN and TTOU: nworkers_changed with the new and the old count.
        server.proc.send_signal(signal.SIGTTIN)
        wait_for(log, lambda s: named(s, "nworkers_changed")[-1]["new"] == 3)
        server.wait_for_log(r"worker 3 \(pid \d+\) serving")
        server.proc.send_signal(signal.SIGTTOU)
        seen = wait_for(log, lambda s: named(s, "child_exit"))
        assert (named(seen, "nworkers_changed")[-1]["new"],
                named(seen, "nworkers_changed")[-1]["old"]) == (2, 3)
        gone, = named(seen, "child_exit")
        assert gone["process"] == master
        # worker_exit ran in the worker that left, before the master saw it go.
        left = [n for n in named(seen, "worker_exit") if n["pid"] == gone["pid"]]
        assert len(left) == 1 and left[0]["process"] == gone["pid"]
        assert seen.index(left[0]) < seen.index(gone)

        # HUP: on_reload in the master, then a new generation of workers.
        before = len(named(notes(log), "post_worker_init"))
        server.proc.send_signal(signal.SIGHUP)
        seen = wait_for(log, lambda s: named(s, "on_reload")
                        and len(named(s, "post_worker_init")) >= before + 2)
        assert named(seen, "on_reload")[0]["process"] == master
        assert server.stop() == 0

    seen = notes(log)
    assert seen[-1] == {"hook": "on_exit", "process": master, "server": master}
    started = {n["pid"] for n in named(seen, "post_fork")}
    assert {n["pid"] for n in named(seen, "worker_exit")} == started
    assert {n["pid"] for n in named(seen, "child_exit")} == started
    assert server.log.count("Traceback") == 1  # only the broken pre_request hook's


def test_a_hook_named_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "hooked_app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "my_hooks.py").write_text(textwrap.dedent('''
        def stamp(server, worker):
            with open("post_fork.txt", "a") as f:
                f.write(f"{worker.age} {worker.pid}\\n")
    '''))
    with ServerProcess("hooked_app:app", "--post-fork", "my_hooks:stamp",
                       cwd=tmp_path) as server:
        assert get(server, "/")[0] == 200
        assert (tmp_path / "post_fork.txt").read_text() == f"1 {server.worker_pid}\n"


def test_a_hook_that_cannot_be_imported_is_one_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from support import ROOT

    (tmp_path / "hooked_app.py").write_text(textwrap.dedent(APP))
    result = subprocess.run([sys.executable, "-m", "wsgiloop", "hooked_app:app", "--bind",
                             "127.0.0.1:0", "--when-ready", "no_such_module:ready"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsgiloop: error: --when-ready: "), lines
    assert "no_such_module" in lines[0]


def test_ssl_context_hook(tmp_path: Path) -> None:
    """ssl_context(config, default_ssl_context_factory) returns the context to serve
    with: here the default one, narrowed to TLS 1.3."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    (tmp_path / "hooked_app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent('''
        import ssl

        certfile = "server.pem"

        def ssl_context(config, default_ssl_context_factory):
            context = default_ssl_context_factory()
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            with open("ssl_context.txt", "w") as f:
                f.write(config.certfile)
            return context
    '''))
    with ServerProcess("hooked_app:app", cwd=tmp_path) as server:
        client = ssl.create_default_context()
        ca.configure_trust(client)
        conn = http.client.HTTPSConnection(server.host, server.port, timeout=10,
                                           context=client)
        conn.request("GET", "/tls")
        assert conn.getresponse().read() == b"hello from /tls"
        assert conn.sock.version() == "TLSv1.3"
        conn.close()
        old = ssl.create_default_context()
        ca.configure_trust(old)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        conn = http.client.HTTPSConnection(server.host, server.port, timeout=10, context=old)
        with pytest.raises(ssl.SSLError):
            conn.request("GET", "/tls")
        conn.close()
    assert (tmp_path / "ssl_context.txt").read_text() == "server.pem"


def _wait_gone(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # exited, waiting for its parent to reap it
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still running")


def test_worker_int_and_pre_exec_hooks(tmp_path: Path) -> None:
    """worker_int runs in each worker told to stop at once (INT to the master);
    pre_exec in the process that becomes the new master on USR2, before it execs."""
    (tmp_path / "hooked_app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "my_hooks.py").write_text(textwrap.dedent('''
        import os

        def interrupted(worker):
            with open("worker_int.txt", "a") as f:
                f.write(f"{worker.pid} {os.getpid()}\\n")

        def before_exec(server):
            with open("pre_exec.txt", "a") as f:
                f.write(f"{os.getpid()}\\n")
    '''))
    with ServerProcess("hooked_app:app", "-w", "2", "--worker-int", "my_hooks:interrupted",
                       "--pre-exec", "my_hooks:before_exec", cwd=tmp_path) as server:
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")
        workers = sorted(server.worker_pids())
        server.proc.send_signal(signal.SIGUSR2)
        match = server.wait_for_log(r"USR2: started a new master \(pid (\d+)\)")
        new_master = int(match.group(1))
        assert (tmp_path / "pre_exec.txt").read_text() == f"{new_master}\n"
        server.wait_for_log(rf"\[{new_master}\] \[INFO\] Listening at")
        os.kill(new_master, signal.SIGTERM)
        _wait_gone(new_master)
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(20) == 0
    lines = sorted((tmp_path / "worker_int.txt").read_text().splitlines())
    assert lines == sorted(f"{pid} {pid}" for pid in workers)


def test_worker_abort_hook_on_a_worker_silent_past_the_timeout(tmp_path: Path) -> None:
    """With a worker_abort hook, a worker whose loop is stuck past --timeout gets SIGABRT
    (after its stack is dumped), runs the hook and exits; a new worker takes over."""
    (tmp_path / "stuck_app.py").write_text(textwrap.dedent('''
        import time

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/stuck":
                while True:  # holds the event loop: no more heartbeats
                    time.sleep(0.01)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"fine"]
    '''))
    (tmp_path / "my_hooks.py").write_text(textwrap.dedent('''
        import os

        def aborted(worker):
            with open("worker_abort.txt", "a") as f:
                f.write(f"{worker.pid} {os.getpid()}\\n")
    '''))
    with ServerProcess("stuck_app:app", "-t", "2", "--worker-abort", "my_hooks:aborted",
                       cwd=tmp_path) as server:
        stuck = server.worker_pid
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("GET", "/stuck")
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            conn.getresponse()
        conn.close()
        server.wait_for_log(rf"worker 1 \(pid {stuck}\) aborted \(SIGABRT\) after its "
                            rf"worker_abort hook", timeout=15)
        assert (tmp_path / "worker_abort.txt").read_text() == f"{stuck} {stuck}\n"
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")
        assert get(server, "/")[1] == b"fine"
        assert "Traceback" not in server.log.split("aborted (SIGABRT)")[1]


def test_worker_abort_hook_while_the_application_loads(tmp_path: Path) -> None:
    """A worker stuck importing the application is aborted the same way (its SIGABRT
    handler is there from the start): the hook runs, and worker_exit after it."""
    import subprocess
    import sys

    from support import ROOT

    (tmp_path / "slow_import.py").write_text("import time\ntime.sleep(60)\n"
                                             "def app(environ, start_response):\n    pass\n")
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent('''
        timeout = 2

        def worker_abort(worker):
            with open("abort.txt", "a") as f:
                f.write(f"abort {worker.pid}\\n")

        def worker_exit(server, worker):
            with open("abort.txt", "a") as f:
                f.write(f"exit {worker.pid}\\n")
    '''))
    proc = subprocess.Popen([sys.executable, "-m", "wsgiloop", "slow_import:app", "--bind",
                             "127.0.0.1:0"], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "exit" not in (
                (tmp_path / "abort.txt").read_text() if (tmp_path / "abort.txt").exists()
                else ""):
            time.sleep(0.1)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    lines = (tmp_path / "abort.txt").read_text().splitlines()
    pid = lines[0].split()[1]
    assert lines[:2] == [f"abort {pid}", f"exit {pid}"], lines
    assert f"(pid {pid}) aborted (SIGABRT) after its worker_abort hook" in stderr, stderr
    assert "died from SIGABRT" not in stderr
