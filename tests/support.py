"""Helpers shared by the tests: a real wsgiloop server (or a proxy in front of one) in a
subprocess, raw socket exchanges, driving an IOLoop until a condition holds, and small
parsing helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsgiloop.testing import LiveServer

if TYPE_CHECKING:
    from wsgiloop.ioloop import IOLoop

ROOT = Path(__file__).resolve().parent.parent


def server_env(extra: dict | None = None) -> dict:
    """The environment of a wsgiloop the tests start: this one, with the worktree root
    and ``tests/`` first on ``PYTHONPATH``, unbuffered output, and ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests")] + [p for p in [env.get("PYTHONPATH")] if p])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess(LiveServer):
    """``python -m wsgiloop APP ARGS...`` as the tests run it: from the worktree root
    (or ``cwd``), with :func:`server_env`, bound to ``bind`` (a free port of 127.0.0.1;
    "" or None: only where the arguments or the configuration say), and otherwise with
    wsgiloop's own defaults (no forced foreground or stderr logging), at any kind of
    address (``host`` and ``port`` are None for a Unix socket).

    Everything else is :class:`wsgiloop.testing.LiveServer`'s: ``url``, ``log``,
    ``wait_for_log``, ``worker_pids``..., and ``stop()``, also on leaving a ``with``
    block, ends the whole process group.
    """

    forced_args = ()
    tcp_only = False

    def __init__(self, app: str, *args: str, env: dict | None = None,
                 cwd: str | os.PathLike | None = None, bind: str | None = "127.0.0.1:0",
                 timeout: float = 15.0, **options: Any) -> None:
        super().__init__(app, args, cwd=ROOT if cwd is None else cwd, env=server_env(env),
                         start_timeout=timeout, bind=bind or None, **options)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)


#: What wsgiref's validator (around the applications of tests/apps.py) can only print, or
#: raises where no test sees it: in a server's log, each means a PEP 3333 violation.
VALIDATOR_COMPLAINTS = ("garbage collected without being closed", "WSGIWarning",
                        "AssertionError")


def assert_no_validator_complaints(server: LiveServer) -> None:
    """For the teardown of a server fixture (after the server stopped, so that its log is
    whole): nothing in its log says the validator caught the server out."""
    log = server.log
    found = [complaint for complaint in VALIDATOR_COMPLAINTS if complaint in log]
    assert not found, f"the validator complained ({', '.join(found)}):\n{log}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(proc: subprocess.Popen, ports: Iterable[int], name: str,
                   details: Callable[[], str], stop: Callable[[], None],
                   timeout: float = 10.0) -> None:
    """Wait until ``proc`` (``name`` in messages) accepts connections on 127.0.0.1 on
    each of ``ports``.

    Raises RuntimeError with ``details()`` (what the process wrote) if it exits first, or
    calls ``stop()`` and raises if it is not listening within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n" + details())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    message = f"{name} did not start listening:\n" + details()
                    stop()
                    raise RuntimeError(message)
                time.sleep(0.05)


def terminate(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop ``proc`` with SIGTERM, or SIGKILL if it is still running after ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def raw_request(sock: socket.socket, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    sock.sendall(data)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` in MiB (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def run_until(loop: IOLoop, predicate: Callable[[], object], timeout: float = 3.0) -> bool:
    """Run ``loop`` until ``predicate()`` is true (checked every few ms) or ``timeout``.

    ``timeout`` is in real seconds, whatever clock the loop uses.  A side thread pokes
    the loop with ``call_soon_threadsafe`` so the check runs even while the loop sleeps
    in poll (with a fake clock, possibly for a long real time).  Returns the
    predicate's last value.
    """
    deadline = time.monotonic() + timeout
    finished = threading.Event()
    outcome = [False]

    def check() -> None:
        if finished.is_set():
            return  # a poke queued by an earlier run
        outcome[0] = bool(predicate())
        if outcome[0] or time.monotonic() >= deadline:
            finished.set()
            loop.stop()

    def poker() -> None:
        while not finished.wait(0.005):
            loop.call_soon_threadsafe(check)

    thread = threading.Thread(target=poker, daemon=True)
    thread.start()
    loop.call_soon(check)
    try:
        loop.run_forever()
    finally:
        finished.set()
        thread.join()
    return outcome[0]


def run_for(loop: IOLoop, seconds: float) -> None:
    """Run ``loop`` for about ``seconds`` of real time, whatever clock it uses."""
    run_until(loop, lambda: False, timeout=seconds)


class FakeClock:
    """A clock the test moves by hand (``clock.now += 5``): call it (as an IOLoop's
    ``clock``), or ask its ``time()`` (in place of the ``time`` module)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The value of the first header called ``name`` (in any case), or None."""
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None
