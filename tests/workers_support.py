"""Helpers of tests/test_workers.py: the master and its workers as processes.

:class:`Server` is the tests' :class:`support.ServerProcess` (itself the pytest plugin's
:class:`wsgiloop.testing.LiveServer`: a master in its own session, its log, its workers'
pids, a stop that ends its whole process group) serving ``workers_apps:app``, plus what
these tests ask of workers: waiting for a number of them, and making sure each one
answers.  The ``serve`` fixture starts servers and kills every process they made at the
end whatever happened.  While signals fly, :class:`Load` keeps a few keep-alive clients
busy and counts every request and every failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from support import ServerProcess

APP = "workers_apps:app"
_LINE = re.compile(r"^\[[^\]]*\] \[(\d+)\] \[(\w+)\] (.*)$")

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

# -- the server --------------------------------------------------------------------------


class Server(ServerProcess):
    """``python -m wsgiloop workers_apps:app ARGS...`` (``app`` for another), in its own
    session, waited for up to 20 s.  ``launcher`` replaces ``python -m wsgiloop`` (for a
    wrapper); ``log_file`` is where to look for the "Listening at" line when the error log
    goes to a file."""

    def __init__(self, *args: str, app: str = APP, timeout: float = 20.0,
                 **options: Any) -> None:
        super().__init__(app, *args, timeout=timeout, **options)

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


@contextlib.contextmanager
def started_servers() -> Iterator[Callable[..., Server]]:
    """A ``start(*args, **options)`` making :class:`Server` s; whatever happens, every
    process they made is killed at the end (and any left after ``stop()`` is an error)."""
    started: list[Server] = []

    def start(*args: str, **options: Any) -> Server:
        server = Server(*args, **options)
        started.append(server)
        return server

    yield start
    leftovers = []
    for server in started:
        server.stop(timeout=10)
        left = group_members(server.pgid)
        if left:
            leftovers.append((server.command, left))
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


# -- small helpers of single tests ------------------------------------------------------


def stuck_request(server: Server) -> threading.Thread:
    """A client thread sending ``GET /stuck``, which never ends (the worker is killed)."""
    def call() -> None:
        with contextlib.suppress(Exception):
            server.get("/stuck", timeout=20)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def run_to_exit(cmd: list[str], env: dict, cwd: Path) -> tuple[int, str, str, list[int]]:
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


def reap(pid: int, timeout: float) -> int | None:
    """Reap our (adopted) child ``pid``: its exit status, or None if still running."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def usr2(server: Server) -> int:
    """USR2 to the master; returns the new master's pid once its workers serve."""
    server.signal(signal.SIGUSR2)
    _, m = server.wait_for_line(r"USR2: started a new master \(pid (\d+)\)")
    new = int(m.group(1))
    wait_until(lambda: [p for _, p in server.listening() if p == new], 15,
               "the new master to listen", server.full_log)
    assert server.listening()[-1][0] == server.url  # the same socket
    return new


def listener() -> socket.socket:
    """A listening TCP socket on a free port of 127.0.0.1 (to hand to a server)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def stack_dumps(text: str) -> int:
    """How many faulthandler dumps of the stuck application ``text`` holds."""
    return len(re.findall(FAULTHANDLER_FRAME, text))

