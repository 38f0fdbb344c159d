"""Helpers shared by the tests: a real wsgiloop server (or a proxy in front of one) in a
subprocess, raw socket exchanges, driving an IOLoop until a condition holds, and small
parsing helpers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsgiloop.ioloop import IOLoop

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"Listening at: (\S+)")


class ServerProcess:
    """A ``python -m wsgiloop`` subprocess bound to a free port.

    ``url`` is the first address the server reported; ``log`` collects stderr so far.
    Use as a context manager: the process is always stopped on exit.
    """

    def __init__(self, app: str, *args: str, env: dict | None = None,
                 cwd: str | os.PathLike | None = None, bind: str = "127.0.0.1:0",
                 timeout: float = 15.0, preexec_fn: Any = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "tests")] + [p for p in [full_env.get("PYTHONPATH")] if p])
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        cmd = [sys.executable, "-m", "wsgiloop", app]
        if bind:
            cmd += ["--bind", bind]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=full_env, cwd=cwd or ROOT, text=True,
                                     preexec_fn=preexec_fn)
        self._lines: list[str] = []
        self._out: list[str] = []
        self.urls: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        if not self._ready.wait(timeout) or not self.urls:
            self.stop()
            raise RuntimeError("server did not start:\n" + self.log)
        self.url = self.urls[0]
        m = re.match(r"https?://(\[[^\]]+\]|[^:/]+):(\d+)", self.url)
        if m:
            self.host = m.group(1).strip("[]")
            self.port = int(m.group(2))

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line)
            m = _LISTENING.search(line)
            if m:
                self.urls.append(m.group(1))
                self._ready.set()
        self._ready.set()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.append(line)

    @property
    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return "".join(self._lines)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log)
            if m:
                return m
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} not in the server log:\n{self.log}")

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the workers that reported serving and have not exited, oldest first."""
        log = self.log
        serving = [int(p) for p in re.findall(r"worker \d+ \(pid (\d+)\) serving", log)]
        gone = {int(p) for p in re.findall(
            r"worker \d+ \(pid (\d+)\) (?:exited|stopped|killed|died|was killed|ended)", log)}
        return [p for p in serving if p not in gone]

    @property
    def worker_pid(self) -> int:
        """The pid of the (first) serving worker: where requests are handled."""
        deadline = time.monotonic() + 5
        while not self.worker_pids and time.monotonic() < deadline:
            time.sleep(0.02)  # the line follows "Listening at" in the same pass
        pids = self.worker_pids
        assert pids, "no worker is serving:\n" + self.log
        return pids[0]

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The value of the first header called ``name`` (in any case), or None."""
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None
