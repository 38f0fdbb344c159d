"""The master and its workers, as processes: real signals, real sockets, real load.

Every test runs ``python -m wsgiloop workers_apps:app`` (``tests/workers_apps.py``) in
its own session (so its process group holds the master, its workers and any master it
re-executes), and the ``serve`` fixture kills that whole group at the end whatever
happened.  While signals fly, :class:`Load` keeps a few keep-alive clients busy and
counts every request and every failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import ROOT

APP = "workers_apps:app"
_LINE = re.compile(r"^\[[^\]]*\] \[(\d+)\] \[(\w+)\] (.*)$")
_LISTENING = re.compile(r"Listening at: (\S+) \((\d+)\)")
_GONE = r"(?:exited|stopped by|killed|died|was killed|ended itself|failed to boot)"


def server_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests")] + [p for p in [env.get("PYTHONPATH")] if p])
    env["PYTHONUNBUFFERED"] = "1"
    for name in list(env):
        if name.startswith("WSGILOOP_") or name.startswith("LISTEN_"):
            del env[name]
    env.update(extra or {})
    return env


# -- processes ---------------------------------------------------------------------------


def proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` (``R``, ``S``, ``Z``...), or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Live children of ``pid`` (the master is single-threaded: one task holds them)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split() if alive(int(p))]
    except OSError:
        return []


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               log: Callable[[], str] | None = None) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = "\n--- server log ---\n" + log() if log is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(0.02)


def log_record(text: str, pattern: str) -> str:
    """The whole (multi-line) log record whose first line matches ``pattern``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            end = i + 1
            while end < len(lines) and not _LINE.match(lines[end]):
                end += 1
            return "\n".join(lines[i:end])
    raise AssertionError(f"no log record matches {pattern!r}:\n{text}")


#: A frame of ``wsgiloop_test_stuck_forever`` as faulthandler prints it (``line N in f``,
#: where the traceback module prints ``line N, in f``).
FAULTHANDLER_FRAME = (r'File "[^"]*workers_apps\.py", line \d+ in '
                      r"wsgiloop_test_stuck_forever")


def set_child_subreaper(on: bool) -> None:
    """Make this process adopt orphaned descendants (a re-executed master), so that it
    can reap them and see their exit status (PR_SET_CHILD_SUBREAPER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class Server:
    """A wsgiloop master in its own session, its stderr collected with arrival times.

    ``cmd`` replaces the usual ``python -m wsgiloop APP --bind ...`` command (for a
    wrapper); ``log_file`` is where to look for the "Listening at" line when the error
    log goes to a file.
    """

    def __init__(self, *args: str, app: str = APP, bind: str | None = "127.0.0.1:0",
                 env: dict | None = None, cmd: list[str] | None = None,
                 pass_fds: tuple[int, ...] = (), cwd: str | os.PathLike = ROOT,
                 log_file: Path | None = None, timeout: float = 20.0) -> None:
        if cmd is None:
            cmd = [sys.executable, "-m", "wsgiloop", app]
            if bind:
                cmd += ["--bind", bind]
        self.cmd = cmd + list(args)
        self.log_file = log_file
        self.lines: list[tuple[float, str]] = []
        self._out: list[str] = []
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=server_env(env), cwd=cwd, text=True,
                                     pass_fds=pass_fds, start_new_session=True)
        self.pid = self.proc.pid
        self.pgid = self.proc.pid
        self._pumps = [threading.Thread(target=self._pump, args=(self.proc.stderr, True),
                                        daemon=True),
                       threading.Thread(target=self._pump, args=(self.proc.stdout, False),
                                        daemon=True)]
        for pump in self._pumps:
            pump.start()
        try:
            wait_until(lambda: self.listening() or self.proc.poll() is not None, timeout,
                       "the server to listen", self.full_log)
            urls = self.listening()
            assert urls, f"the server did not start:\n{self.full_log()}"
        except BaseException:
            self.kill_group()
            raise
        self.url = urls[0][0]
        m = re.match(r"http://(\[[^\]]+\]|[^:/]+):(\d+)", self.url)
        assert m, self.url
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))

    def _pump(self, stream, is_err: bool) -> None:
        for line in stream:
            if is_err:
                self.lines.append((time.monotonic(), line))
            else:
                self._out.append(line)

    # -- the log ---------------------------------------------------------------------------

    @property
    def log(self) -> str:
        """Everything written to stderr so far (all masters: they share it)."""
        return "".join(line for _, line in list(self.lines))

    def full_log(self) -> str:
        text = self.log
        if self.log_file is not None and self.log_file.exists():
            text += f"--- {self.log_file} ---\n" + self.log_file.read_text(errors="replace")
        return text

    def listening(self, text: str | None = None) -> list[tuple[str, int]]:
        """(url, master pid) of each "Listening at" line so far."""
        if text is None:
            text = self.full_log()
        return [(m.group(1), int(m.group(2))) for m in _LISTENING.finditer(text)]

    def wait_for_log(self, pattern: str, timeout: float = 10.0, after: float = 0.0
                     ) -> tuple[float, re.Match]:
        """The first stderr line matching ``pattern`` that arrived after ``after``
        (monotonic time): its arrival time and the match."""
        rx = re.compile(pattern)

        def find() -> tuple[float, re.Match] | None:
            for when, line in list(self.lines):
                if when >= after:
                    m = rx.search(line)
                    if m:
                        return when, m
            return None

        return wait_until(find, timeout, f"{pattern!r} in the log", self.full_log)

    def worker_pids(self, master: int | None = None, text: str | None = None) -> list[int]:
        """Workers that reported serving and have not exited (by the log), oldest first;
        only those of ``master`` if given."""
        serving: list[int] = []
        gone: set[int] = set()
        for line in (self.full_log() if text is None else text).splitlines():
            m = _LINE.match(line)
            if not m or (master is not None and int(m.group(1)) != master):
                continue
            message = m.group(3)
            s = re.match(r"worker \d+ \(pid (\d+)\) serving", message)
            if s:
                serving.append(int(s.group(1)))
            g = re.match(r"worker \d+ \(pid (\d+)\) " + _GONE, message)
            if g:
                gone.add(int(g.group(1)))
        return [p for p in serving if p not in gone]

    def wait_workers(self, count: int, master: int | None = None, timeout: float = 15.0,
                     exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Wait until exactly ``count`` workers serve (log) and they are exactly the live
        children of the master, none of them in ``exclude``; returns their pids."""
        master = self.pid if master is None else master

        def check() -> list[int] | None:
            pids = self.worker_pids(master)
            kids = children(master)
            if len(pids) == count and sorted(pids) == sorted(kids) and \
                    not set(pids) & set(exclude):
                return pids
            return None

        return wait_until(check, timeout, f"{count} serving worker(s) of master {master}",
                          self.full_log)

    # -- control ---------------------------------------------------------------------------

    def signal(self, sig: int, pid: int | None = None) -> None:
        os.kill(self.pid if pid is None else pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the master did not exit within {timeout}s:\n"
                                 f"{self.full_log()}")

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group, and reap the master."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.wait(10)
        for pump in self._pumps:
            pump.join(2)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill_group()
        return self.proc.returncode

    # -- requests --------------------------------------------------------------------------

    def get(self, path: str = "/", timeout: float = 10.0) -> tuple[int, str, dict]:
        """One request on a new connection: status, body, headers (lower-case names)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode()
            return resp.status, body, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def pid_of_response(self, path: str = "/") -> int:
        status, body, _ = self.get(path)
        assert status == 200, body
        return int(body.split()[0])

    def wait_served_by(self, pids: list[int] | set[int], timeout: float = 15.0) -> None:
        """Send requests on new connections until each of ``pids`` has answered one.

        The kernel hands a new connection to the first idle worker (they wait with
        EPOLLEXCLUSIVE), so a worker that answers and is not wanted is kept busy for a
        second, by a slow request on the connection it just answered, to let the others
        have the next connections.  (Loop-mode workers only: ``--threads 0``.)
        """
        missing = set(pids)
        deadline = time.monotonic() + timeout
        busy: list[tuple[http.client.HTTPConnection, threading.Thread]] = []

        def occupy(conn: http.client.HTTPConnection) -> None:
            with contextlib.suppress(Exception):
                conn.request("GET", "/slow?s=1")
                conn.getresponse().read()

        try:
            while missing:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no response from {sorted(missing)} in {timeout}s:\n"
                                         f"{self.full_log()}")
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode()
                assert resp.status == 200, body
                pid = int(body.split()[0])
                if pid in missing:
                    missing.discard(pid)
                    conn.close()
                    continue
                thread = threading.Thread(target=occupy, args=(conn,), daemon=True)
                thread.start()
                busy.append((conn, thread))
                time.sleep(0.1)
        finally:
            for conn, thread in busy:
                thread.join(10)
                conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Start servers; whatever happens, every process they made is killed at the end."""
    started: list[Server] = []

    def start(*args: str, **kwargs) -> Server:
        server = Server(*args, **kwargs)
        started.append(server)
        return server

    yield start
    leftovers = []
    for server in started:
        server.stop(timeout=10)
        left = group_members(server.pgid)
        if left:
            leftovers.append((server.cmd, left))
            server.kill_group()
    assert not leftovers, f"processes left behind: {leftovers}"


# -- load --------------------------------------------------------------------------------


class Load:
    """A few threads, each with one keep-alive ``http.client`` connection, sending
    requests back to back; a response that says ``Connection: close`` makes the thread
    reconnect.  Every request is counted: ``ok`` (2xx) or a failure (anything else:
    another status, a reset, a refused connection, a timeout)."""

    def __init__(self, host: str, port: int, threads: int = 3, path: str = "/",
                 pause: float = 0.0) -> None:
        self.host, self.port, self.path, self.pause = host, port, path, pause
        self.ok = 0
        self.failures: list[tuple[float, str]] = []
        self.pids: Counter[int] = Counter()
        self.reconnects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]

    @property
    def requests(self) -> int:
        return self.ok + len(self.failures)

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Load:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self._threads), "a load thread hangs"
        return self

    def wait_requests(self, more: int, timeout: float = 20.0) -> None:
        target = self.requests + more
        wait_until(lambda: self.requests >= target, timeout, f"{more} more requests")

    def summary(self) -> str:
        return (f"{self.requests} requests, {self.ok} ok, {len(self.failures)} failed, "
                f"{self.reconnects} reconnects, pids {dict(self.pids)}, "
                f"failures {self.failures[:10]}")

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
            except Exception as exc:
                with self._lock:
                    self.failures.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
                conn.close()
                conn = None
                time.sleep(0.01)
                continue
            with self._lock:
                if 200 <= resp.status < 300 and body.split()[:1] and body.split()[0].isdigit():
                    self.ok += 1
                    self.pids[int(body.split()[0])] += 1
                else:
                    self.failures.append((time.monotonic(), f"status {resp.status}: {body!r}"))
            if resp.will_close:
                conn.close()
                conn = None
                with self._lock:
                    self.reconnects += 1
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()


@contextlib.contextmanager
def load_on(server: Server, **kwargs) -> Iterator[Load]:
    load = Load(server.host, server.port, **kwargs).start()
    try:
        load.wait_requests(20)
        yield load
    finally:
        load.stop()


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
        when, m = server.wait_for_log(r"worker \d+ \(pid (\d+)\) serving", after=killed_at)
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
        server.wait_for_log(r"HUP: starting generation 10 of 2 worker")
        # The last generation serves alone: every earlier worker has exited.
        last = server.wait_workers(2, timeout=20, exclude=set(first))
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
    termed, _ = server.wait_for_log(r"SIGTERM: stopping gracefully")
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


def _stuck_request(server: Server) -> threading.Thread:
    def call() -> None:
        with contextlib.suppress(Exception):
            server.get("/stuck", timeout=20)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_stuck_worker_stack_is_dumped_and_worker_replaced(serve):
    server = serve("-w", "1", "-t", "2", "--graceful-timeout", "3")
    [stuck] = server.wait_workers(1)
    sent = time.monotonic()
    client = _stuck_request(server)
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
    client = _stuck_request(server)
    _, m = server.wait_for_log(r"worker \d+: request 'GET /stuck' has run [\d.]+s, past "
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


def _run_to_exit(cmd: list[str], env: dict, cwd: Path) -> tuple[int, str, str, list[int]]:
    """Run ``cmd`` in its own session to its end: status, stdout, stderr, and the
    processes of its group still alive afterwards (killed then)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=cwd, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        left = group_members(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, out, err, left


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
        status, out, err, left = _run_to_exit(cmd, env, tmp_path)
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
        server.wait_for_log(rf"SIGTTOU: now {expected} worker\(s\)", after=sent)
        left = server.wait_workers(expected)
    # The oldest go first.
    assert left == [pids[-1]]
    assert len(children(server.pid)) == 1
    assert server.pid_of_response() == left[0]
    assert server.stop() == 0


# -- recycling ---------------------------------------------------------------------------


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
    assert server.stop() == 0


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


def _reap(pid: int, timeout: float) -> int | None:
    """Reap our (adopted) child ``pid``: its exit status, or None if still running."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def _usr2(server: Server) -> int:
    """USR2 to the master; returns the new master's pid once its workers serve."""
    server.signal(signal.SIGUSR2)
    _, m = server.wait_for_log(r"USR2: started a new master \(pid (\d+)\)")
    new = int(m.group(1))
    wait_until(lambda: [p for _, p in server.listening() if p == new], 15,
               "the new master to listen", server.full_log)
    assert server.listening()[-1][0] == server.url  # the same socket
    return new


def test_usr2_then_term_hands_over_without_failures(serve, tmp_path):
    set_child_subreaper(True)
    new = 0
    try:
        pidfile = tmp_path / "wsgiloop.pid"
        server = serve("-w", "2", "--pid", str(pidfile))
        old_workers = server.wait_workers(2)
        with load_on(server, threads=4) as load:
            server.wait_served_by(old_workers)
            new = _usr2(server)
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
        assert _reap(new, 20) == 0, server.full_log()
        wait_until(lambda: not group_members(server.pgid), 10, "every process to exit")
        assert not pidfile.exists()
        assert re.search(rf"\[{new}\] \[INFO\] master {new} stopped", server.log)
    finally:
        if new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(new, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                _reap(new, 5)
        set_child_subreaper(False)


def test_usr2_old_pid_file_removed_when_old_master_exits(serve, tmp_path):
    pidfile = tmp_path / "wsgiloop.pid"
    oldbin = Path(f"{pidfile}.oldbin")
    server = serve("-w", "1", "--pid", str(pidfile))
    server.wait_workers(1)
    new = _usr2(server)
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


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def test_fd_serves_an_inherited_socket(serve):
    with _listener() as sock:
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
    with _listener() as sock:
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
    with _listener() as sock:
        port = sock.getsockname()[1]
        fd = sock.fileno()
        server = serve(cmd=[sys.executable, "-c", wrapper, str(fd), APP, "-w", "2"],
                       pass_fds=(fd,))
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


def _dumps(text: str) -> int:
    """How many faulthandler dumps of the stuck application ``text`` holds."""
    return len(re.findall(FAULTHANDLER_FRAME, text))


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
    _stuck_request(server).join(15)
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
    if not _dumps(errlog.read_text()):
        problems.append("the stack dump of the worker started before USR1 is not in the "
                        "error log")
    # Its replacement, started after the USR1, gets stuck too.
    [second] = server.wait_workers(1, exclude={worker})
    _stuck_request(server).join(15)
    wait_until(lambda: f"(pid {second}) killed" in errlog.read_text(), 15,
               "the second stuck worker to be killed", server.full_log)
    server.stop()
    text = errlog.read_text()
    dump_after = text[text.index(f"(pid {second}) sent no heartbeat"):]
    if not _dumps(dump_after):
        where = "stderr" if _dumps(server.log) else "nowhere"
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
    _stuck_request(server).join(15)
    wait_until(lambda: f"(pid {worker}) killed" in errlog.read_text(), 15,
               "the stuck worker to be killed", server.full_log)
    assert server.stop() == 0
    text = errlog.read_text()
    assert _dumps(text) == 1, (f"stack dumps: {_dumps(text)} in {errlog}, "
                               f"{_dumps(server.log)} on stderr\n--- stderr ---\n{server.log}")


def test_usr1_does_not_kill_a_booting_worker(serve):
    server = serve("-w", "1", env={"WORKERS_APPS_IMPORT_DELAY": "1.5"})
    [first] = server.wait_workers(1)
    server.signal(signal.SIGTTIN)
    _, m = server.wait_for_log(r"booting worker 2 \(pid (\d+)\)")
    booting = int(m.group(1))
    time.sleep(0.3)  # it is importing the application
    server.signal(signal.SIGUSR1)
    pids = server.wait_workers(2, timeout=15)
    assert booting in pids, server.log
    assert "SIGUSR1" not in server.log, server.log
    assert server.stop() == 0
