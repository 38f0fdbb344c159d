"""The master and its workers, as processes: real signals, real sockets, real load.

Every test runs ``python -m wsgiloop workers_apps:app`` (``tests/workers_apps.py``) in
its own session through the ``serve`` fixture, which kills that whole process group at
the end whatever happened; while signals fly, ``Load`` keeps a few keep-alive clients
busy and counts every request and every failure (all in ``tests/workers_support.py``).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import server_env
from workers_support import (
    FAULTHANDLER_FRAME,
    Server,
    alive,
    children,
    group_members,
    listener,
    load_on,
    log_record,
    reap,
    run_to_exit,
    set_child_subreaper,
    stack_dumps,
    started_servers,
    stuck_request,
    usr2,
    wait_until,
)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Start servers; whatever happens, every process they made is killed at the end."""
    with started_servers() as start:
        yield start


# -- worker deaths -----------------------------------------------------------------------


def test_kill_9_worker_under_load(serve):
    server = serve("-w", "2")
    first = server.wait_workers(2)
    with load_on(server, threads=4) as load:
        load.wait_requests(200)
        [(victim, _)] = load.pids.most_common(1)  # a worker with requests in flight
        survivor = next(p for p in first if p != victim)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log(rf"worker \d+ \(pid {victim}\) was killed by SIGKILL, not sent "
                            r"by wsgiloop(; no out-of-memory kill is recorded|: by another "
                            r"process, or possibly the kernel's out-of-memory killer)")
        when, m = server.wait_for_line(r"worker \d+ \(pid (\d+)\) serving", after=killed_at)
        replacement = int(m.group(1))
        assert replacement not in first
        assert when - killed_at < 1.0, f"replacement served after {when - killed_at:.2f}s"
        now = server.wait_workers(2)
        assert sorted(now) == sorted([survivor, replacement])
        server.wait_served_by([replacement])
        load.wait_requests(100)
    assert not alive(victim)
    # Only the requests the killed worker had on its connections may fail: at most one
    # per client connection, and all of them right when it died.
    assert len(load.failures) <= 4, load.summary()
    assert all(t - killed_at < 2.0 for t, _ in load.failures), load.summary()
    assert load.ok > 100, load.summary()
    assert server.stop() == 0


def test_ten_hups_under_load_lose_no_request(serve):
    server = serve("-w", "2")
    first = server.wait_workers(2)
    rnd = random.Random(1234)
    with load_on(server, threads=4) as load:
        for _ in range(10):
            time.sleep(rnd.uniform(0.5, 1.0))
            server.signal(signal.SIGHUP)
        tenth = server.wait_for_log(r"HUP: starting generation 10 of 2 worker")
        # The last generation serves alone: every earlier worker has exited.  (Excluding
        # only the first generation could take the ninth, still serving alone for the
        # moment before the tenth is forked.)
        earlier = {int(pid) for pid in re.findall(r"booting worker \d+ \(pid (\d+)\)",
                                                  server.log[:tenth.start()])}
        last = server.wait_workers(2, timeout=20, exclude=earlier)
        wait_until(lambda: set(last) & set(load.pids), 10, "the last generation to serve the load")
        load.wait_requests(100)
    for pid in first:
        assert not alive(pid), f"old worker {pid} still runs"
    assert sorted(children(server.pid)) == sorted(last)
    assert load.failures == [], load.summary()
    assert load.ok > 300, load.summary()
    assert server.stop() == 0


@pytest.mark.parametrize("mode", ["threads", "loop"])
def test_term_lets_the_request_in_flight_finish(serve, mode):
    args = ["-w", "2", "--graceful-timeout", "10"]
    if mode == "threads":
        args += ["--threads", "2"]
    server = serve(*args)
    server.wait_workers(2)
    result: dict = {}

    def slow() -> None:
        try:
            result["response"] = server.get("/slow?s=3", timeout=20)
        except Exception as exc:
            result["error"] = exc

    client = threading.Thread(target=slow)
    started = time.monotonic()
    client.start()
    time.sleep(0.5)  # the request is being handled
    server.signal(signal.SIGTERM)
    termed, _ = server.wait_for_line(r"SIGTERM: stopping gracefully")
    time.sleep(0.3)  # the master and the idle worker close their listening sockets
    # From now until the master exits, every new connection must be refused -- not
    # accepted by the kernel into the listen queue of a worker that is busy, only to be
    # reset (or served) later.  Each probe sends a request; what it got is read at the end.
    probes: list[tuple[float, socket.socket | None]] = []
    while server.proc.poll() is None and time.monotonic() - started < 15:
        at = time.monotonic() - termed
        try:
            sock = socket.create_connection((server.host, server.port), timeout=2)
        except ConnectionRefusedError:
            probes.append((at, None))
        else:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            probes.append((at, sock))
        time.sleep(0.2)
    client.join(20)
    assert "error" not in result, f"{result['error']!r}\n{server.full_log()}"
    status, body, headers = result["response"]
    assert status == 200 and body.endswith("slept 3"), (status, body)
    if mode == "threads":
        # The loop learnt of the TERM while the application ran: no keep-alive.  (On
        # the loop thread the response is written before the loop hears of it.)
        assert headers.get("connection", "").lower() == "close", headers
    assert server.wait() == 0, server.full_log()
    assert time.monotonic() - started >= 3.0
    assert re.search(r"master \d+ stopped", server.log), server.log
    accepted = []
    for at, sock in probes:
        if sock is None:
            continue
        with sock:
            sock.settimeout(2)
            try:
                got = sock.recv(100)
                outcome = f"answered {got.splitlines()[0]!r}" if got else "closed, no answer"
            except OSError as exc:
                outcome = f"{type(exc).__name__} after sending its request"
        accepted.append(f"connection {at:.1f}s after TERM accepted, then {outcome}")
    assert len(probes) >= 5
    assert not accepted, "\n".join(accepted)


def test_stuck_worker_stack_is_dumped_and_worker_replaced(serve):
    server = serve("-w", "1", "-t", "2", "--graceful-timeout", "3")
    [stuck] = server.wait_workers(1)
    sent = time.monotonic()
    client = stuck_request(server)
    server.wait_for_log(rf"worker \d+ \(pid {stuck}\) sent no heartbeat for [\d.]+s "
                        r"\(--timeout 2", timeout=10)
    server.wait_for_log(rf"worker \d+ \(pid {stuck}\) killed \(SIGKILL\)", timeout=10)
    [new] = server.wait_workers(1, exclude={stuck})
    assert server.pid_of_response() == new
    client.join(10)
    log = server.log
    # faulthandler's dump (not the loop's own slow-callback warning, which also shows
    # the stack, in the traceback module's format), between the master's warning and
    # the kill.
    dump = log[log.index("sent no heartbeat"):log.index(f"(pid {stuck}) killed")]
    assert "(most recent call first)" in dump, log
    assert re.search(FAULTHANDLER_FRAME, dump), log
    assert time.monotonic() - sent < 10
    assert server.stop() == 0


@pytest.mark.parametrize("threads", ["0", "2"])
def test_request_timeout_logs_stack_and_replaces_worker(serve, threads):
    server = serve("-w", "1", "--threads", threads, "--request-timeout", "1",
                   "--graceful-timeout", "3")
    [stuck] = server.wait_workers(1)
    client = stuck_request(server)
    _, m = server.wait_for_line(r"worker \d+: request 'GET /stuck' has run [\d.]+s, past "
                               r"--request-timeout 1", timeout=10)
    server.wait_for_log(rf"worker \d+ \(pid {stuck}\) ended itself: a request ran longer "
                        r"than --request-timeout", timeout=10)
    [new] = server.wait_workers(1, exclude={stuck})
    assert server.pid_of_response() == new
    client.join(10)
    stack = log_record(server.log, r"past --request-timeout")
    assert re.search(r'File "[^"]*workers_apps\.py", line \d+, in wsgiloop_test_stuck_forever',
                     stack), server.log
    assert server.stop() == 0


# -- boot failures -----------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "3"])
@pytest.mark.parametrize("case", ["import-error", "missing-module"])
def test_app_that_cannot_load_exits_2_with_one_line(tmp_path, case, workers):
    (tmp_path / "badmod.py").write_text(
        'raise ImportError("the frobnicator driver is missing")\n')
    spec, reason = {
        "import-error": ("badmod:app", "ImportError: the frobnicator driver is missing"),
        "missing-module": ("no_such_module_xyz:app", "module 'no_such_module_xyz' not found"),
    }[case]
    env = server_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    cmd = [sys.executable, "-m", "wsgiloop", spec, "--bind", "127.0.0.1:0", "-w", workers]
    # With several workers the outcome depends on which fails first: try a few times.
    for attempt in range(1 if workers == "1" else 5):
        status, out, err, left = run_to_exit(cmd, env, tmp_path)
        assert status == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, f"attempt {attempt + 1}: expected one line on stderr, got:\n{err}"
        assert lines[0].startswith("wsgiloop: error: "), err
        assert reason in lines[0], err
        assert out == ""
        assert left == []
    assert not list(tmp_path.glob("core*"))


# -- the number of workers ---------------------------------------------------------------


def test_ttin_ttou_change_the_number_of_workers(serve):
    server = serve("-w", "2")
    first = server.wait_workers(2)
    for expected in (3, 4):
        server.signal(signal.SIGTTIN)
        server.wait_for_log(rf"SIGTTIN: now {expected} worker\(s\)")
        pids = server.wait_workers(expected)
    assert set(first) <= set(pids)
    for expected in (3, 2, 1, 1):
        sent = time.monotonic()
        server.signal(signal.SIGTTOU)
        server.wait_for_line(rf"SIGTTOU: now {expected} worker\(s\)", after=sent)
        left = server.wait_workers(expected)
    # The oldest go first.
    assert left == [pids[-1]]
    assert len(children(server.pid)) == 1
    assert server.pid_of_response() == left[0]
    assert server.stop() == 0


# -- recycling ---------------------------------------------------------------------------


SLOW_CHILD_START = """
import time

def pre_fork(arbiter, worker):
    # Holds the new child for a moment between the fork and its own signal handlers.
    start = worker.run_in_child

    def slow_start(*args):
        time.sleep(2)
        return start(*args)

    worker.run_in_child = slow_start
"""


def test_term_to_a_worker_just_forked_is_not_lost(serve, tmp_path):
    """A TERM the master passes on while a worker is between its fork and its own
    signal handlers waits for them (the master forks with its signals blocked): the
    worker stops, and so does the master, well before --graceful-timeout."""
    config = tmp_path / "slow_child.py"
    config.write_text(SLOW_CHILD_START)
    server = serve("-w", "1", "-c", str(config), "--graceful-timeout", "60")
    server.wait_workers(1)
    server.signal(signal.SIGTTIN)  # one more worker: its boot is logged as it happens
    server.wait_for_log(r"booting worker 2 \(pid \d+\)")
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=20) == 0, server.full_log()
    assert re.search(r"worker 2 \(pid \d+\) exited", server.log), server.log


def test_max_requests_recycles_workers_without_failures(serve):
    server = serve("-w", "2", "--max-requests", "50", "--max-requests-jitter", "10")
    first = server.wait_workers(2)
    with load_on(server, threads=3) as load:
        wait_until(lambda: len(load.pids) >= 8, 30,
                   "eight worker generations to have served", server.full_log)
        load.wait_requests(50)
    limits = [int(n) for n in re.findall(r"asks to be replaced: served \d+ requests "
                                         r"\(--max-requests (\d+)\)", server.log)]
    assert len(limits) >= 6, server.log
    assert all(50 <= n <= 60 for n in limits), limits
    assert len(set(limits)) > 1, f"no jitter: {limits}"
    assert load.failures == [], load.summary()
    # A worker at its limit takes no new connection and answers each open one (the load
    # has 3) at most twice more: the request under way, and one that was already on its
    # way after a keep-alive response (answered with Connection: close).
    retired = [int(p) for p in re.findall(r"\(pid (\d+)\) asks to be replaced", server.log)]
    assert max(load.pids[pid] for pid in retired) <= 60 + 2 * 3, load.summary()
    for pid in first:
        assert not alive(pid)
    assert server.stop() == 0, server.full_log()


def test_max_rss_recycles_a_growing_worker_without_failures(serve):
    probe = serve("-w", "1")
    probe.wait_workers(1)
    _, body, _ = probe.get("/rss")
    idle = int(body.split()[1])
    probe.stop()
    limit = idle + (40 << 20)
    server = serve("-w", "2", "--max-rss", str(limit))
    first = server.wait_workers(2)
    with load_on(server, threads=3) as load:
        server.wait_served_by(first)
        status, body, _ = server.get("/grow?mb=64")
        assert status == 200
        grown, rss = (int(x) for x in body.split())
        assert rss > limit
        server.wait_for_log(rf"worker \d+ \(pid {grown}\) asks to be replaced: resident "
                            r"memory \d+ MiB passed --max-rss \d+ MiB")
        server.wait_for_log(rf"worker \d+ \(pid {grown}\) exited")
        now = server.wait_workers(2, exclude={grown})
        server.wait_served_by(now)
        load.wait_requests(100)
    assert not alive(grown)
    assert load.failures == [], load.summary()
    assert server.stop() == 0


# -- re-exec -----------------------------------------------------------------------------


def test_usr2_then_term_hands_over_without_failures(serve, tmp_path):
    set_child_subreaper(True)
    new = 0
    try:
        pidfile = tmp_path / "wsgiloop.pid"
        server = serve("-w", "2", "--pid", str(pidfile))
        old_workers = server.wait_workers(2)
        with load_on(server, threads=4) as load:
            server.wait_served_by(old_workers)
            new = usr2(server)
            assert new != server.pid
            new_workers = server.wait_workers(2, master=new)
            assert pidfile.read_text().strip() == str(new)
            assert Path(f"{pidfile}.oldbin").read_text().strip() == str(server.pid)
            server.signal(signal.SIGTERM)
            assert server.wait() == 0, server.full_log()
            for pid in old_workers:
                assert not alive(pid)
            assert alive(new)
            server.wait_served_by(new_workers)
            after = sum(load.pids[p] for p in new_workers)
            wait_until(lambda: sum(load.pids[p] for p in new_workers) > after + 200, 15,
                       "the new master's workers to serve on", server.full_log)
        assert load.failures == [], load.summary()
        assert set(load.pids) <= set(old_workers) | set(new_workers), load.summary()
        assert set(load.pids) & set(old_workers), load.summary()
        # Stop the new master too; it was adopted by this process (a subreaper).
        assert pidfile.read_text().strip() == str(new)
        os.kill(new, signal.SIGTERM)
        assert reap(new, 20) == 0, server.full_log()
        wait_until(lambda: not group_members(server.pgid), 10, "every process to exit")
        assert not pidfile.exists()
        assert re.search(rf"\[{new}\] \[INFO\] master {new} stopped", server.log)
    finally:
        if new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(new, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                reap(new, 5)
        set_child_subreaper(False)


def test_usr2_old_pid_file_removed_when_old_master_exits(serve, tmp_path):
    pidfile = tmp_path / "wsgiloop.pid"
    oldbin = Path(f"{pidfile}.oldbin")
    server = serve("-w", "1", "--pid", str(pidfile))
    server.wait_workers(1)
    new = usr2(server)
    server.wait_workers(1, master=new)
    assert oldbin.read_text().strip() == str(server.pid)
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    assert pidfile.read_text().strip() == str(new)
    # The old master is gone: a pid file naming it would be stale.
    assert not oldbin.exists(), f"{oldbin} names {oldbin.read_text().strip()}, which exited"
    os.kill(new, signal.SIGTERM)
    wait_until(lambda: not alive(new), 20, "the new master to exit")


# -- pid file, preload, inherited sockets ----------------------------------------------


def test_pid_file_written_and_removed(serve, tmp_path):
    pidfile = tmp_path / "run" / "wsgiloop.pid"
    pidfile.parent.mkdir()
    server = serve("-w", "1", "--pid", str(pidfile))
    server.wait_workers(1)
    assert pidfile.read_text() == f"{server.pid}\n"
    assert server.stop() == 0
    assert not pidfile.exists()
    assert os.listdir(pidfile.parent) == []


@pytest.mark.parametrize("preload", [True, False])
def test_preload_imports_the_app_once_in_the_master(serve, tmp_path, preload):
    imports = tmp_path / "imports"
    args = ["-w", "2"] + (["--preload"] if preload else [])
    server = serve(*args, env={"WORKERS_APPS_IMPORT_LOG": str(imports)})
    workers = server.wait_workers(2)
    pids = [int(p) for p in imports.read_text().split()]
    if preload:
        assert pids == [server.pid]
    else:
        assert sorted(pids) == sorted(workers)
    served = {server.pid_of_response() for _ in range(20)}
    assert served <= set(workers) and server.pid not in served
    if preload:
        # HUP restarts the workers without importing the application again.
        server.signal(signal.SIGHUP)
        server.wait_workers(2, exclude=set(workers))
        assert [int(p) for p in imports.read_text().split()] == [server.pid]
    assert server.stop() == 0



def test_fd_serves_an_inherited_socket(serve):
    with listener() as sock:
        port = sock.getsockname()[1]
        fd = sock.fileno()
        server = serve("-w", "2", "--fd", str(fd), bind=None, pass_fds=(fd,))
    assert server.port == port
    workers = server.wait_workers(2)
    assert server.pid_of_response() in workers
    assert server.stop() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_bind_fd_url_serves_an_inherited_socket(serve):
    """gunicorn's ``--bind fd://N``, beside a second, bound address."""
    with listener() as sock:
        port = sock.getsockname()[1]
        fd = sock.fileno()
        server = serve("--bind", f"fd://{fd}", "--bind", "127.0.0.1:0", bind=None,
                       pass_fds=(fd,))
    assert port in [int(url.rsplit(":", 1)[1]) for url, _ in server.listening()]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 ")
    assert server.stop() == 0


def test_systemd_socket_activation(serve):
    wrapper = ("import os, sys\n"
               "fd = int(sys.argv[1])\n"
               "os.dup2(fd, 3)\n"
               "os.close(fd)\n"
               "os.environ['LISTEN_FDS'] = '1'\n"
               "os.environ['LISTEN_PID'] = str(os.getpid())\n"
               "os.execv(sys.executable, [sys.executable, '-m', 'wsgiloop', *sys.argv[2:]])\n")
    with listener() as sock:
        port = sock.getsockname()[1]
        fd = sock.fileno()
        server = serve("-w", "2", launcher=[sys.executable, "-c", wrapper, str(fd)],
                       bind=None, pass_fds=(fd,))
    assert server.port == port
    assert server.listening()[0][1] == server.pid  # LISTEN_PID matched: the same process
    workers = server.wait_workers(2)
    assert server.pid_of_response() in workers
    assert server.stop() == 0


# -- logs --------------------------------------------------------------------------------


def test_usr1_reopens_the_error_log(serve, tmp_path):
    errlog = tmp_path / "error.log"
    moved = tmp_path / "error.log.1"
    server = serve("-w", "2", "--error-log", str(errlog), log_file=errlog)
    workers = server.wait_workers(2)
    errlog.rename(moved)
    server.signal(signal.SIGUSR1)
    wait_until(errlog.exists, 5, "a new error log at the original path")
    time.sleep(0.5)  # the workers reopen theirs too
    server.signal(signal.SIGTTIN)
    wait_until(lambda: "SIGTTIN: now 3 worker(s)" in errlog.read_text(), 5,
               "the master's line in the new file")
    wait_until(lambda: len(re.findall(r"\(pid \d+\) serving", errlog.read_text())) == 1, 10,
               "the new worker to serve")
    assert server.stop() == 0
    new_text = errlog.read_text()
    old_text = moved.read_text()
    # Lines written after USR1, by the master and by the workers that were already
    # running, went to the new file; none to the renamed one.
    for pid in workers:
        assert re.search(rf"\[{pid}\] \[INFO\] worker \d+ \(pid {pid}\) stopping: TERM",
                         new_text), new_text
    assert re.search(rf"\[{server.pid}\] \[INFO\] master {server.pid} stopped", new_text)
    assert "SIGTTIN" not in old_text and "stopping: TERM" not in old_text, old_text
    assert "Listening at" in old_text and "Listening at" not in new_text
    assert server.log == "", server.log  # nothing on stderr


def test_usr1_wsgi_errors_and_stack_dumps_follow_the_reopened_log(serve, tmp_path):
    """After USR1, what the workers write outside the logging module -- the application's
    ``wsgi.errors`` and the watchdog's stack dumps (faulthandler) -- goes to the new
    file too, for workers started before and after the USR1."""
    errlog = tmp_path / "error.log"
    moved = tmp_path / "error.log.1"
    server = serve("-w", "1", "-t", "2", "--graceful-timeout", "3", "--error-log", str(errlog),
                   log_file=errlog)
    [worker] = server.wait_workers(1)
    errlog.rename(moved)
    server.signal(signal.SIGUSR1)
    wait_until(errlog.exists, 5, "a new error log at the original path")
    time.sleep(0.5)
    problems = []
    status, body, _ = server.get("/errors?text=marker-after-usr1")
    if status != 200:
        problems.append(f"/errors after USR1 answered {status}: "
                        f"{log_record(errlog.read_text(), 'error handling GET /errors')}")
    # A client that connects now, gets its answer and keeps its connection open.
    bystander = socket.create_connection((server.host, server.port), timeout=5)
    bystander.sendall(b"GET / HTTP/1.1\r\nHost: bystander\r\n\r\n")
    response = b""
    while not response.endswith(str(worker).encode()):
        response += bystander.recv(4096)
    # The worker started before the USR1 gets stuck and is killed by the watchdog.
    stuck_request(server).join(15)
    wait_until(lambda: f"(pid {worker}) killed" in errlog.read_text(), 15,
               "the stuck worker to be killed", server.full_log)
    bystander.settimeout(2)
    extra = b""
    with contextlib.suppress(OSError):
        while chunk := bystander.recv(65536):
            extra += chunk
    bystander.close()
    if extra:
        problems.append(f"a client connected after USR1 received, after its response, "
                        f"{len(extra)} more bytes: {extra[:120]!r}...")
    if not stack_dumps(errlog.read_text()):
        problems.append("the stack dump of the worker started before USR1 is not in the "
                        "error log")
    # Its replacement, started after the USR1, gets stuck too.
    [second] = server.wait_workers(1, exclude={worker})
    stuck_request(server).join(15)
    wait_until(lambda: f"(pid {second}) killed" in errlog.read_text(), 15,
               "the second stuck worker to be killed", server.full_log)
    server.stop()
    text = errlog.read_text()
    dump_after = text[text.index(f"(pid {second}) sent no heartbeat"):]
    if not stack_dumps(dump_after):
        where = "stderr" if stack_dumps(server.log) else "nowhere"
        problems.append(f"the stack dump of the worker started after USR1 is not in the "
                        f"error log (it went to {where})")
    if "marker-after-usr1" not in text:
        problems.append("the wsgi.errors line written after USR1 is not in the error log")
    assert not problems, "\n".join(problems) + f"\n--- {errlog} ---\n{text}"


def test_hup_stack_dumps_stay_in_the_error_log(serve, tmp_path):
    """HUP reopens the error log (settings reload); the new generation's stack dumps
    must still go there, not to stderr."""
    errlog = tmp_path / "error.log"
    # --graceful-timeout 3: if the stuck request's retry lands on the replacement worker,
    # the final TERM must not wait the default 30 s for it.
    server = serve("-w", "1", "-t", "2", "--graceful-timeout", "3", "--error-log", str(errlog),
                   log_file=errlog)
    [first] = server.wait_workers(1)
    server.signal(signal.SIGHUP)
    [worker] = server.wait_workers(1, exclude={first})
    stuck_request(server).join(15)
    wait_until(lambda: f"(pid {worker}) killed" in errlog.read_text(), 15,
               "the stuck worker to be killed", server.full_log)
    assert server.stop() == 0
    text = errlog.read_text()
    assert stack_dumps(text) == 1, (f"stack dumps: {stack_dumps(text)} in {errlog}, "
                               f"{stack_dumps(server.log)} on stderr\n--- stderr ---\n{server.log}")


def test_usr1_does_not_kill_a_booting_worker(serve):
    server = serve("-w", "1", env={"WORKERS_APPS_IMPORT_DELAY": "1.5"})
    [first] = server.wait_workers(1)
    server.signal(signal.SIGTTIN)
    _, m = server.wait_for_line(r"booting worker 2 \(pid (\d+)\)")
    booting = int(m.group(1))
    time.sleep(0.3)  # it is importing the application
    server.signal(signal.SIGUSR1)
    pids = server.wait_workers(2, timeout=15)
    assert booting in pids, server.log
    assert "SIGUSR1" not in server.log, server.log
    assert server.stop() == 0
