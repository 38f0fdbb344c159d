"""A pytest plugin: your application served by a real wsgiloop, for end-to-end tests.

Installed with wsgiloop (through the ``pytest11`` entry point), it gives every test the
``live_server`` fixture::

    # pyproject.toml
    [tool.pytest.ini_options]
    wsgiloop_app = "myapp:app"

    # test_site.py
    import requests

    def test_home(live_server):
        assert requests.get(live_server.url + "/").status_code == 200

``live_server`` runs ``python -m wsgiloop APP`` as a subprocess from the rootdir (which,
with the directories of pytest's ``pythonpath`` option, is put on ``PYTHONPATH``), bound
to a free port of 127.0.0.1, and waits for its ``Listening at:`` line.  It yields a
:class:`LiveServer`: ``url``, ``host``, ``port``, ``log`` (stderr so far), ``stdout`` (the
access log with ``--access-log -``).  One server is shared by the tests of a module and
stopped (TERM, then KILL for whatever of its process group lingers) after the module's
last test; with ``wsgiloop_scope = "session"`` (or ``--wsgiloop-scope session``) it is
shared by the whole run instead.  Each different application and argument list gets its own server.

Choosing the application: the ``wsgiloop_app`` ini option, or override the
``wsgiloop_app`` fixture (any scope) to return the spec; when both give nothing the
server takes the application from wsgiloop's own configuration (``app`` in
``[tool.wsgiloop]``, a config file, ``WSGILOOP_APP``).  More command-line arguments: the
``wsgiloop_args`` ini option (split like a shell does) or the ``wsgiloop_args`` fixture.
wsgiloop's config files and ``WSGILOOP_*`` variables apply as they would to
``wsgiloop``, except that the server is always bound to 127.0.0.1:0 (unless the arguments
have ``--bind``), runs in the foreground and logs to stderr.

This module imports nothing from the rest of wsgiloop: the server runs in its own process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

_LISTENING = re.compile(r"Listening at: (\S+)(?: \((\d+)\))?")
_URL = re.compile(r"(https?)://(\[[^\]]+\]|[^:/]+):(\d+)")
# One record of the error log: "[time] [pid] [LEVEL] message".
_RECORD = re.compile(r"^\[[^\]]*\] \[(\d+)\] \[(\w+)\] (.*)$")
_SERVING = re.compile(r"worker \d+ \(pid (\d+)\) serving")
_GONE = re.compile(r"worker \d+ \(pid (\d+)\) (?:exited|stopped by|killed|died|was killed|"
                   r"ended itself|failed to boot|aborted)")
_SCOPES = ("module", "session")


class LiveServer:
    """A ``python -m wsgiloop`` subprocess, started and waited for by the constructor.

    ``url`` is the first address it reported (``http://127.0.0.1:PORT``), ``host`` and
    ``port`` its parts.  ``log`` is everything it wrote to stderr so far, ``stdout``
    likewise for stdout.  Raises :class:`RuntimeError`, with the log, if the server
    exits or says nothing within ``start_timeout`` seconds.

    The server runs in a session of its own, so that its process group holds the master,
    its workers and any master it re-executes; :meth:`stop` (also on leaving a ``with``
    block) ends them all.  ``bind`` is the address added when ``args`` name none (None:
    add none); ``launcher`` replaces ``python -m wsgiloop`` (a wrapper that runs it);
    ``log_file`` is where the error log goes when the arguments send it to a file (it is
    then searched for the ``Listening at:`` line, and part of :meth:`full_log`).
    """

    #: Added after the caller's arguments: run in the foreground, log to stderr.
    forced_args: tuple[str, ...] = ("--no-daemon", "--error-log", "-")
    #: Whether an address other than TCP (a Unix socket) is an error.
    tcp_only = True

    def __init__(self, app: str | None, args: Sequence[str] = (), *,
                 cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, python_path: Sequence[str] = (),
                 start_timeout: float = 30.0, bind: str | None = "127.0.0.1:0",
                 launcher: Sequence[str] | None = None, pass_fds: Sequence[int] = (),
                 preexec_fn: Callable[[], Any] | None = None,
                 log_file: str | os.PathLike[str] | None = None) -> None:
        self.app = app
        self.args = list(args)
        environ = dict(os.environ if env is None else env)
        paths = [str(p) for p in python_path]
        if environ.get("PYTHONPATH"):
            paths.append(environ["PYTHONPATH"])
        if paths:
            environ["PYTHONPATH"] = os.pathsep.join(paths)
        environ["PYTHONUNBUFFERED"] = "1"
        if launcher is None:
            launcher = [sys.executable, "-m", "wsgiloop"]
        command = [*launcher, *([app] if app else []), *self.args]
        if bind and not any(a in ("-b", "--bind") or a.startswith("--bind=")
                            for a in self.args):
            command += ["--bind", bind]
        command += self.forced_args
        self.command = command
        self.log_file = Path(log_file) if log_file is not None else None
        self._lines: list[tuple[float, str]] = []  # stderr: (arrival time, line)
        self._out: list[str] = []
        self.proc = subprocess.Popen(command, cwd=cwd, env=environ, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     pass_fds=tuple(pass_fds), preexec_fn=preexec_fn)
        #: The process group of the master, its workers and any re-executed master.
        self.pgid = self.proc.pid
        self._pumps = [threading.Thread(target=self._pump, args=(self.proc.stderr, True),
                                        daemon=True),
                       threading.Thread(target=self._pump, args=(self.proc.stdout, False),
                                        daemon=True)]
        for pump in self._pumps:
            pump.start()
        deadline = time.monotonic() + start_timeout
        while not self.listening():
            if self.proc.poll() is not None:
                for pump in self._pumps:
                    pump.join(timeout=5)  # what it wrote before it exited
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        urls = self.listening()
        if not urls:
            self.stop()
            status = self.proc.returncode
            raise RuntimeError(
                f"wsgiloop did not start ({shlex.join(command)}; "
                f"{'exit status ' + str(status) if status is not None else 'timed out'}):\n"
                f"{self.full_log()}")
        self.url = urls[0][0]
        m = _URL.match(self.url)
        if not m:
            if self.tcp_only:
                self.stop()
                raise RuntimeError(f"wsgiloop listens at {self.url}, not at a TCP address")
            self.scheme: str | None = None
            self.host: str | None = None
            self.port: int | None = None
            return
        self.scheme = m.group(1)
        self.host = m.group(2).strip("[]")
        self.port = int(m.group(3))

    def _pump(self, stream: Any, is_stderr: bool) -> None:
        for line in stream:
            if is_stderr:
                self._lines.append((time.monotonic(), line))
            else:
                self._out.append(line)

    # -- what it wrote -----------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The master's process id."""
        return self.proc.pid

    @property
    def log(self) -> str:
        """What the server wrote to stderr so far (its error log)."""
        return "".join(line for _, line in list(self._lines))

    @property
    def stdout(self) -> str:
        """What the server wrote to stdout so far (the access log, with --access-log -)."""
        return "".join(self._out)

    def full_log(self) -> str:
        """:attr:`log`, followed by the error log file's text when there is one."""
        text = self.log
        if self.log_file is not None and self.log_file.exists():
            text += f"--- {self.log_file} ---\n" + self.log_file.read_text(errors="replace")
        return text

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until ``pattern`` (a regular expression) appears in :attr:`log`."""
        return self._wait_for(pattern, lambda: self.log, "the wsgiloop log", timeout)

    def wait_for_stdout(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until ``pattern`` (a regular expression) appears in :attr:`stdout`: an
        access-log line is written once its response has been sent, so a test that has
        its response may be a moment ahead of the line."""
        return self._wait_for(pattern, lambda: self.stdout, "the wsgiloop stdout", timeout)

    @staticmethod
    def _wait_for(pattern: str, text: Callable[[], str], what: str, timeout: float
                  ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, text())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in {what}:\n{text()}")
            time.sleep(0.02)

    def wait_for_line(self, pattern: str, timeout: float = 10.0, after: float = 0.0
                      ) -> tuple[float, re.Match[str]]:
        """The first stderr line matching ``pattern`` that arrived at or after ``after``
        (a :func:`time.monotonic` time), once there is one: its arrival time and the
        match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for when, line in list(self._lines):
                if when >= after:
                    m = rx.search(line)
                    if m:
                        return when, m
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in the wsgiloop log after "
                                     f"{timeout}s:\n{self.full_log()}")
            time.sleep(0.02)

    def listening(self) -> list[tuple[str, int | None]]:
        """(address, master pid) of each ``Listening at:`` line so far (every master's:
        a re-executed one writes to the same log)."""
        return [(m.group(1), int(m.group(2)) if m.group(2) else None)
                for m in _LISTENING.finditer(self.full_log())]

    def worker_pids(self, master: int | None = None) -> list[int]:
        """Workers that reported serving and have not ended (by the log), oldest first;
        only those of ``master`` (a pid) if given."""
        serving: list[int] = []
        gone: set[int] = set()
        for line in self.full_log().splitlines():
            m = _RECORD.match(line)
            if not m or (master is not None and int(m.group(1)) != master):
                continue
            message = m.group(3)
            s = _SERVING.match(message)
            if s:
                serving.append(int(s.group(1)))
            g = _GONE.match(message)
            if g:
                gone.add(int(g.group(1)))
        return [p for p in serving if p not in gone]

    @property
    def worker_pid(self) -> int:
        """The pid of the (first) serving worker: where requests are handled."""
        deadline = time.monotonic() + 5
        while not self.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.02)  # the line follows "Listening at" in the same pass
        pids = self.worker_pids()
        assert pids, "no worker is serving:\n" + self.full_log()
        return pids[0]

    # -- control -------------------------------------------------------------------------------

    def signal(self, sig: int, pid: int | None = None) -> None:
        """Send ``sig`` to the master (or to ``pid``)."""
        os.kill(self.pid if pid is None else pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the master to exit; its exit status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the master did not exit within {timeout}s:\n"
                                 f"{self.full_log()}") from None

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group; reap the master."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        for pump in self._pumps:
            pump.join(timeout=5)

    def stop(self, timeout: float = 15.0) -> int:
        """TERM the master and wait; then KILL whatever is left of its process group
        (all of it, if the master lingers).  Returns the master's exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill_group()
        return self.proc.returncode

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = getattr(self, "url", "starting")
        return f"<LiveServer {self.app or '(configured app)'} at {where}>"


class _Servers:
    """The servers started so far, one per (application, arguments)."""

    def __init__(self) -> None:
        self.running: dict[tuple[str | None, tuple[str, ...]], LiveServer] = {}

    def get(self, app: str | None, args: Sequence[str], config: pytest.Config) -> LiveServer:
        key = (app, tuple(args))
        server = self.running.get(key)
        if server is not None and server.running:
            return server
        if server is not None:
            server.stop()
        rootpath = Path(config.rootpath)
        try:
            extra = [str(p) for p in config.getini("pythonpath")]
        except ValueError:  # a pytest without the pythonpath option
            extra = []
        python_path = [str(rootpath), *extra]
        try:
            timeout = float(config.getini("wsgiloop_start_timeout"))
        except ValueError:
            raise pytest.UsageError("wsgiloop_start_timeout: expected a number of seconds")
        try:
            server = LiveServer(app, args, cwd=rootpath, python_path=python_path,
                                start_timeout=timeout)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        self.running[key] = server
        return server

    def stop_all(self) -> None:
        while self.running:
            _, server = self.running.popitem()
            server.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("wsgiloop_app", "The application live_server serves (module:app); "
                  "default: the one in wsgiloop's own configuration.", default="")
    parser.addini("wsgiloop_args", "More wsgiloop command-line arguments for "
                  "live_server (split like a shell does).", type="args", default=[])
    parser.addini("wsgiloop_scope", "How long one live_server lives: 'module' (default) "
                  "or 'session'.", default="module")
    parser.addini("wsgiloop_start_timeout", "Seconds live_server waits for wsgiloop to "
                  "listen (default 30).", default="30")
    group = parser.getgroup("wsgiloop")
    group.addoption("--wsgiloop-scope", choices=_SCOPES, default=None,
                    help="How long one live_server lives (overrides the wsgiloop_scope "
                         "ini option).")


def _scope(config: pytest.Config) -> str:
    scope = config.getoption("wsgiloop_scope") or config.getini("wsgiloop_scope") or "module"
    if scope not in _SCOPES:
        raise pytest.UsageError(f"wsgiloop_scope: expected one of {', '.join(_SCOPES)}, "
                                f"not {scope!r}")
    return scope


def pytest_configure(config: pytest.Config) -> None:
    _scope(config)  # a bad value is a usage error at once, not in the first test


@pytest.fixture(scope="session")
def wsgiloop_app(pytestconfig: pytest.Config) -> str | None:
    """The application spec live_server serves; override it to choose another."""
    return pytestconfig.getini("wsgiloop_app").strip() or None


@pytest.fixture(scope="session")
def wsgiloop_args(pytestconfig: pytest.Config) -> list[str]:
    """More command-line arguments for live_server's wsgiloop; override it to change them."""
    return list(pytestconfig.getini("wsgiloop_args"))


@pytest.fixture(scope="session")
def _wsgiloop_session_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def _wsgiloop_servers(_wsgiloop_session_servers: _Servers,
                      pytestconfig: pytest.Config) -> Iterator[_Servers]:
    yield _wsgiloop_session_servers
    if _scope(pytestconfig) == "module":
        _wsgiloop_session_servers.stop_all()


@pytest.fixture
def live_server(wsgiloop_app: str | None, wsgiloop_args: Sequence[str],
                _wsgiloop_servers: _Servers, pytestconfig: pytest.Config) -> LiveServer:
    """A running wsgiloop serving ``wsgiloop_app``: ``.url``, ``.host``, ``.port``, ``.log``."""
    return _wsgiloop_servers.get(wsgiloop_app, list(wsgiloop_args), pytestconfig)
