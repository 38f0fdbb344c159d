"""The master process: forks workers onto the listening sockets and keeps them healthy.

Each pass of :meth:`Arbiter.run` reaps dead workers, handles the signals received since
the last pass, and reconciles what runs with what should run.  Signal handlers only
record the signal (the wake-up fd ends the master's sleep); all work happens in the pass.

Signals:

* TERM: graceful stop -- workers stop accepting, finish what they have, exit within
  ``graceful_timeout``; what is left is killed.  INT and QUIT: fast stop.
* HUP: reload -- settings and, unless preloaded, the application; a new generation of
  workers is started, and the old one is told to stop only once the new one is serving.
* TTIN / TTOU: one worker more / fewer.  USR1: reopen log files (master and workers).
* USR2: start a new master (re-executing wsgiloop) on the same listening sockets; this
  master keeps serving until it gets TERM.

Health: a worker whose heartbeat is older than ``timeout`` gets its stack dumped (the
stack-dump signal) and is killed (SIGABRT first, when it has a ``worker_abort`` hook);
a worker that asks to retire (``--max-requests``, ``--max-rss``) stops taking requests
and exits by itself, while a replacement is started at once (as gunicorn's do).
Workers that die while booting, before any ever booted, end the master with an error;
a worker that keeps dying is respawned with growing delays.

Metrics (``--metrics-bind``, ``--statsd-host``): the arbiter is handed a
:class:`wsgiloop.metrics.MasterMetrics` and knows it only by its methods: it gives each
worker a counters block before the fork, tells it why each worker exited (the restart
reason), serves its endpoint's sockets from the same ``select`` as the signals, and
answers ``serving`` (ready) and ``stopping`` for ``/readyz``.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..netutil import systemd_fds
from .hooks import HookLog, Hooks
from .oom import OOMWitness
from .reloader import SourceWatcher, syntax_error
from .worker import (
    DUMP_STACK_SIGNAL,
    EXIT_BOOT_ERROR,
    EXIT_REQUEST_TIMEOUT,
    READY,
    RETIRE,
    Status,
    Worker,
    set_master_title,
)

log = logging.getLogger("wsgiloop.error")

_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTTIN,
            signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD)
_FAST_STOP_SECONDS = 2.0
_DUMP_GRACE_SECONDS = 0.5
_ABORT_GRACE_SECONDS = 2.0  # for a worker_abort hook before SIGKILL


class BootError(Exception):
    """Workers could not start serving; the message is the worker's own error line."""


class Arbiter:
    """Runs ``num_workers`` processes of ``worker_target`` over the inherited sockets.

    ``settings`` is read for: workers, timeout, graceful_timeout, pid.  ``reload`` (for
    HUP) returns fresh settings and may raise an exception whose text is logged.
    ``reopen_logs`` is called on USR1.  ``reexec_argv`` is the command for USR2.
    Until the first worker serves, the master's info lines are held back, so that a
    failed start ends with just the worker's error; ``on_first_ready`` runs then.
    """

    def __init__(self, settings: Any, sockets: list, worker_target: Callable[[Worker], int],
                 title: str, *, reload: Callable[[], Any] | None = None,
                 reopen_logs: Callable[[], None] | None = None,
                 reexec_argv: list[str] | None = None,
                 error_stream: Any = None,
                 on_first_ready: Callable[[], None] | None = None,
                 watcher: SourceWatcher | None = None, hooks: Hooks | None = None,
                 metrics: Any = None) -> None:
        self.settings = settings
        #: A :class:`wsgiloop.metrics.MasterMetrics` (--metrics-bind, --statsd-host), or
        #: None: its endpoint is served from this loop, and it is told of workers' lives.
        self.metrics = metrics
        if metrics is not None:
            metrics.attach(self)
        #: gunicorn-style server hooks; the arbiter is their ``server`` argument.
        self.hooks = hooks if hooks is not None else Hooks()
        self.log = HookLog()
        self.sockets = sockets
        self.worker_target = worker_target
        self.title = title
        self.reload_settings = reload
        self.reopen_logs = reopen_logs
        self.reexec_argv = reexec_argv
        self.on_first_ready = on_first_ready
        self.watcher = watcher  # --reload
        self._held: list[tuple[str, tuple]] | None = []  # info lines held until serving
        #: Where workers dump stacks: a stream, or a function giving the current one
        #: (the log file may have been reopened since the master started).
        self.error_stream = error_stream if error_stream is not None else sys.stderr
        self.num_workers = settings.workers
        self.workers: dict[int, Worker] = {}
        self.generation = 0
        self._ages = 0
        self._signals: deque[int] = deque()
        self._stopping: str | None = None  # "graceful" or "fast"
        self._stop_deadline = 0.0
        self._ever_ready = False
        self._boot_error: str | None = None
        self._failures = 0  # workers that died young, in a row
        self._next_spawn_at = 0.0
        self._wake_r = self._wake_w = -1
        self._reexec_pid = 0
        #: True once USR2 started a new master on these sockets.
        self.handed_over = False
        self._pid_path: str | None = None
        self.pid = os.getpid()

    @property
    def serving(self) -> bool:
        """True while at least one worker serves and no stop has begun (``/readyz``)."""
        return self._stopping is None and any(w.ready for w in self.workers.values())

    @property
    def stopping(self) -> bool:
        """True from the moment TERM, INT or QUIT is handled."""
        return self._stopping is not None

    @property
    def cfg(self) -> Any:
        """The settings (gunicorn's ``server.cfg``, for hooks)."""
        return self.settings

    # -- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in _HANDLED:
            signal.signal(signum, self._record)

    def _record(self, signum: int, frame: Any) -> None:
        if signum != signal.SIGCHLD:
            self._signals.append(signum)

    def _sleep(self, seconds: float) -> None:
        readers, writers = self.metrics.fds() if self.metrics is not None else ([], [])
        try:
            ready, writable, _ = select.select([self._wake_r, *readers], writers, [], seconds)
        except InterruptedError:
            return
        if self.metrics is not None:
            self.metrics.handle(ready, writable)  # also drops clients silent for too long
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except (BlockingIOError, InterruptedError):
                pass

    # -- the master's loop -----------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; returns the exit status (0, or 1 when workers cannot boot)."""
        set_master_title(f"wsgiloop: master [{self.title}]")
        #: The master's pid (gunicorn's ``server.pid``, also inside a worker's hooks).
        self.pid = os.getpid()
        self._install_signals()
        self._oom_witness = OOMWitness()  # the OOM-kill counts as they are before any worker
        self._write_pid()
        self.hooks.call("on_starting", self)
        self.hooks.call("when_ready", self)
        self.hooks.call("nworkers_changed", self, self.num_workers, None)
        self._info("master %d starting %d worker(s)", os.getpid(), self.num_workers)
        try:
            while True:
                self._reap()
                while self._signals:
                    self._handle_signal(self._signals.popleft())
                if self._stopping:
                    if not self.workers:
                        break
                    self._enforce_stop_deadline()
                else:
                    if self._boot_error is not None:
                        # The first workers cannot start: the others are booting the
                        # same failure.  End them without ceremony (or log lines).
                        self._stopping = "fast"
                        self._stop_deadline = time.monotonic()
                        for worker in self.workers.values():
                            self._kill(worker, signal.SIGKILL)
                            worker.killed = True
                        continue
                    self._check_heartbeats()
                    if self.watcher is not None:
                        self._check_sources()
                    self._reconcile()
                if self.metrics is not None:
                    self.metrics.tick()
                self._sleep(0.1 if (self._stopping or self._starting()) else 0.5)
        finally:
            self._remove_pid()
            self.hooks.call("on_exit", self)
            if self.metrics is not None:
                self.metrics.close(handed_over=self.handed_over)
        if self._boot_error is not None:
            raise BootError(self._boot_error)
        log.info("master %d stopped", os.getpid())
        return 0

    def _info(self, message: str, *args: Any) -> None:
        if self._held is not None:
            self._held.append((message, args))
        else:
            log.info(message, *args)

    def _starting(self) -> bool:
        return any(not w.ready for w in self.workers.values())

    def _handle_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGTERM:
            log.info("%s: stopping gracefully", name)
            self._begin_stop("graceful")
        elif signum in (signal.SIGINT, signal.SIGQUIT):
            log.info("%s: stopping now", name)
            self._begin_stop("fast")
        elif self._stopping:
            return
        elif signum == signal.SIGHUP:
            self._reload()
        elif signum in (signal.SIGTTIN, signal.SIGTTOU):
            old = self.num_workers
            if signum == signal.SIGTTIN:
                self.num_workers += 1
            elif self.num_workers > 1:
                self.num_workers -= 1
            log.info("%s: now %d worker(s)", name, self.num_workers)
            if self.num_workers != old:
                self.hooks.call("nworkers_changed", self, self.num_workers, old)
        elif signum == signal.SIGUSR1:
            if self.reopen_logs is not None:
                self.reopen_logs()
            self._signal_all(signal.SIGUSR1)
        elif signum == signal.SIGUSR2:
            self._reexec()

    # -- stopping --------------------------------------------------------------------------

    def _begin_stop(self, how: str) -> None:
        if self._stopping == "fast" or self._stopping == how:
            return
        self._stopping = how
        # Sockets a parent passed down (systemd's socket unit, --fd) are only closed: the
        # parent's copy must keep listening for the next start.
        owned = not self.settings.fd and not systemd_fds(os.environ, self.pid)
        for sock in self.sockets:
            if owned and not self.handed_over:
                try:
                    # Stops listening in every process sharing the socket (a busy worker
                    # may not close its copy for a while): new connections are refused.
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            sock.close()
        if how == "graceful":
            # A little longer than the workers' own deadline, so that they close what is
            # left themselves (and say so) before the master resorts to SIGKILL.
            self._stop_deadline = time.monotonic() + self.settings.graceful_timeout + 2.0
            self._signal_all(signal.SIGTERM)
        else:
            self._stop_deadline = time.monotonic() + _FAST_STOP_SECONDS
            self._signal_all(signal.SIGQUIT)

    def _enforce_stop_deadline(self) -> None:
        if time.monotonic() >= self._stop_deadline:
            for worker in self.workers.values():
                if not worker.killed:
                    log.warning("worker %d (pid %d) did not stop in time; killing it",
                                worker.age, worker.pid)
                    self._kill(worker, signal.SIGKILL)
                    worker.killed = True

    def _signal_all(self, signum: int) -> None:
        for worker in list(self.workers.values()):
            self._kill(worker, signum)
            if signum == signal.SIGTERM:
                worker.retiring = True
                worker.term_sent_at = time.monotonic()

    @staticmethod
    def _kill(worker: Worker, signum: int) -> None:
        try:
            os.kill(worker.pid, signum)
        except ProcessLookupError:
            pass

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        self._ages += 1
        status = Status()
        worker = Worker(self._ages, self.generation, status)
        worker.cfg = self.settings
        worker.wake_fd = self._wake_w  # kept open in the worker: see ask_to_be_replaced
        # The hooks the worker is forked with: only then does it handle SIGABRT.
        worker.has_abort_hook = "worker_abort" in self.hooks
        status.reset()
        if self.metrics is not None:
            worker.metrics = self.metrics.new_block()
            worker.statsd = self.metrics.statsd
        self.hooks.call("pre_fork", self, worker)
        # The master's signals wait, blocked, across the fork until the child has its own
        # handlers: one arriving in between would run the master's handler in the child
        # and be lost there (a TERM then left a booting worker serving on).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(self._wake_r)
                if self.metrics is not None:
                    self.metrics.after_fork()
                stream = self.error_stream() if callable(self.error_stream) \
                    else self.error_stream
                worker.run_in_child(self.worker_target, self.title, stream, mask)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        worker.pid = pid
        worker.spawned_at = time.monotonic()
        self.workers[pid] = worker
        self._info("booting worker %d (pid %d)", worker.age, pid)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            if pid == self._reexec_pid:
                self._reexec_pid = 0
                log.warning("the new master (pid %d) exited", pid)
                continue
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._notice_retirement(worker)  # a retiree may stop before we looked
                self._worker_exited(worker, status)
                self.hooks.call("child_exit", self, worker)

    def _worker_exited(self, worker: Worker, status: int) -> None:
        lived = time.monotonic() - worker.spawned_at
        was_ready = worker.ready or worker.status.state in (READY, RETIRE)
        if self.metrics is not None:
            self.metrics.worker_exited(worker, None if self._boot_error is not None else
                                       self._exit_reason(worker, status, was_ready))
        if self._boot_error is not None:
            worker.status.close()
            return  # the start failed: only the boot error is reported
        expected = worker.retiring or self._stopping is not None
        what = f"worker {worker.age} (pid {worker.pid})"
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            name = signal.Signals(signum).name
            if signum == signal.SIGKILL and not worker.killed:
                log.error("%s was killed by SIGKILL, %s", what,
                          self._oom_witness.explain(worker.pid))
            elif worker.killed:
                log.warning("%s killed (%s)", what, name)
            elif not expected:
                log.error("%s died from %s", what, name)
            else:
                log.info("%s stopped by %s", what, name)
            code = -signum
        else:
            code = os.WEXITSTATUS(status)
            if code == EXIT_BOOT_ERROR and not was_ready:
                message = worker.status.message or "the application failed to load"
                if not self._ever_ready:
                    self._boot_error = message  # reported once, by whoever runs us
                else:
                    log.error("%s failed to boot: %s", what, message)
            elif code == EXIT_REQUEST_TIMEOUT:
                log.error("%s ended itself: a request ran longer than --request-timeout", what)
            elif worker.abort_sent_at is not None:
                log.warning("%s aborted (SIGABRT) after its worker_abort hook", what)
            elif code != 0 or not expected:
                log.error("%s exited with status %d", what, code)
            else:
                log.info("%s exited", what)
        if code != 0 and not expected and (not was_ready or lived < 1.0):
            self._failures += 1
            delay = min(0.1 * 2 ** self._failures, 10.0)
            self._next_spawn_at = time.monotonic() + delay
            if self._failures > 1 and self._ever_ready:
                log.warning("workers keep failing; next start in %.1fs", delay)
        elif was_ready:
            self._failures = 0
        worker.status.close()

    def _exit_reason(self, worker: Worker, status: int, was_ready: bool) -> str | None:
        """Why ``worker`` is being replaced (``wsgiloop.metrics.RESTART_REASONS``); None
        when it is not: the master is stopping, or fewer workers are wanted."""
        if self._stopping is not None or worker.stop_cause == "scale-down":
            return None
        if worker.status.retire_kind:
            return worker.status.retire_kind
        if worker.stop_cause == "reload":
            return "reload"
        if worker.dump_sent_at is not None or worker.abort_sent_at is not None:
            return "timeout"
        if os.WIFSIGNALED(status):
            return "crash"
        code = os.WEXITSTATUS(status)
        if code == EXIT_REQUEST_TIMEOUT:
            return "request-timeout"
        if code == EXIT_BOOT_ERROR and not was_ready:
            return "boot-error"
        return "exit"

    def _check_heartbeats(self) -> None:
        timeout = self.settings.timeout
        now = time.monotonic()
        for worker in list(self.workers.values()):
            state = worker.status.state
            if not worker.ready and state in (READY, RETIRE):
                worker.ready = True
                self._failures = 0
                if not self._ever_ready:
                    self._ever_ready = True
                    held, self._held = self._held or [], None
                    if self.on_first_ready is not None:
                        self.on_first_ready()
                    for message, args in held:
                        log.info(message, *args)
                log.info("worker %d (pid %d) serving", worker.age, worker.pid)
            self._notice_retirement(worker)
            if not timeout or worker.killed:
                continue
            silent = now - worker.status.heartbeat
            if worker.abort_sent_at is not None:
                if now - worker.abort_sent_at >= _ABORT_GRACE_SECONDS:
                    self._kill(worker, signal.SIGKILL)  # its worker_abort hook took too long
                    worker.killed = True
            elif worker.dump_sent_at is not None:
                if now - worker.dump_sent_at < _DUMP_GRACE_SECONDS:
                    continue  # the stack is being written
                if worker.has_abort_hook:
                    # As gunicorn does: SIGABRT, on which the worker runs the hook and exits.
                    self._kill(worker, signal.SIGABRT)
                    worker.abort_sent_at = now
                else:
                    self._kill(worker, signal.SIGKILL)
                    worker.killed = True
            elif silent > timeout:
                log.error("worker %d (pid %d) sent no heartbeat for %.1fs (--timeout %s); "
                          "dumping its stack, then killing it", worker.age, worker.pid,
                          silent, timeout)
                self._kill(worker, DUMP_STACK_SIGNAL)
                worker.dump_sent_at = now

    def _notice_retirement(self, worker: Worker) -> None:
        """A worker that asked to be replaced (RETIRE) is a retiree from now on."""
        if worker.status.state == RETIRE and not worker.retiring:
            worker.retiring = True  # replaced by _reconcile
            # It stops by itself: no TERM, but the same deadline as after one.
            worker.term_sent_at = time.monotonic()
            log.info("worker %d (pid %d) asks to be replaced: %s", worker.age, worker.pid,
                     worker.status.message or "recycling")

    def _reconcile(self) -> None:
        """Start missing workers; stop old generations and retirees once replaced."""
        now = time.monotonic()
        current = [w for w in self.workers.values()
                   if w.generation == self.generation and not w.retiring]
        if len(current) < self.num_workers and now >= self._next_spawn_at:
            for _ in range(self.num_workers - len(current)):
                self._spawn()
            current = [w for w in self.workers.values()
                       if w.generation == self.generation and not w.retiring]
        elif len(current) > self.num_workers:
            for worker in sorted(current, key=lambda w: w.age)[:len(current) - self.num_workers]:
                self._stop_worker(worker, "fewer workers wanted", "scale-down")
        ready = sum(1 for w in current if w.ready)
        if ready >= min(self.num_workers, len(current)) and current:
            for worker in list(self.workers.values()):
                if worker.term_sent_at is None and (
                        worker.generation < self.generation or worker.retiring):
                    self._stop_worker(worker, "replaced", "" if worker.retiring else "reload")
        for worker in list(self.workers.values()):
            if worker.term_sent_at is not None and not worker.killed and \
                    now - worker.term_sent_at > self.settings.graceful_timeout + 2.0:
                log.warning("worker %d (pid %d) did not stop within --graceful-timeout; "
                            "killing it", worker.age, worker.pid)
                self._kill(worker, signal.SIGKILL)
                worker.killed = True

    def _stop_worker(self, worker: Worker, why: str, cause: str) -> None:
        log.info("stopping worker %d (pid %d): %s", worker.age, worker.pid, why)
        worker.stop_cause = cause
        worker.retiring = True
        worker.term_sent_at = time.monotonic()
        self._kill(worker, signal.SIGTERM)

    # -- reload and re-exec -----------------------------------------------------------------

    def _check_sources(self) -> None:
        """--reload: start a new generation when source files change and all compile."""
        assert self.watcher is not None
        changed = self.watcher.changes()
        if not changed:
            return
        errors = [e for e in map(syntax_error, changed) if e is not None]
        if errors:
            log.error("not reloading: syntax error in %s; the running workers keep serving "
                      "until it is fixed", errors[0])
            return
        log.info("reloading: %s changed", ", ".join(os.path.relpath(p) for p in changed[:5]))
        self._reload()

    def _reload(self) -> None:
        if self.reload_settings is not None:
            try:
                self.settings = self.reload_settings()
            except Exception as exc:
                log.error("HUP: cannot reload the settings (%s); keeping the old ones", exc)
                return
        self.hooks.call("on_reload", self)
        old, self.num_workers = self.num_workers, self.settings.workers
        if self.num_workers != old:
            self.hooks.call("nworkers_changed", self, self.num_workers, old)
        self.generation += 1
        self._failures = 0
        self._next_spawn_at = 0.0
        log.info("HUP: starting generation %d of %d worker(s)", self.generation,
                 self.num_workers)

    def _reexec(self) -> None:
        if self._reexec_pid:
            log.warning("USR2: a new master (pid %d) is already running", self._reexec_pid)
            return
        if not self.reexec_argv:
            log.warning("USR2: no command line to re-execute")
            return
        fds = [sock.fileno() for sock in self.sockets]
        pid = os.fork()
        if pid == 0:
            try:
                self.hooks.call("pre_exec", self)
                for fd in fds:
                    os.set_inheritable(fd, True)
                env = dict(os.environ)
                env.pop("LISTEN_FDS", None)
                env.pop("LISTEN_PID", None)
                env["WSGILOOP_FD"] = " ".join(str(fd) for fd in fds)
                if self.metrics is not None:
                    env.update(self.metrics.handover_env())
                os.execve(sys.executable, [sys.executable, *self.reexec_argv], env)
            finally:
                os._exit(127)
        self._reexec_pid = pid
        self.handed_over = True
        if self._pid_path:
            try:
                os.replace(self._pid_path, self._pid_path + ".oldbin")
                self._pid_path += ".oldbin"
            except OSError:
                pass
        log.info("USR2: started a new master (pid %d); send TERM to this one (pid %d) "
                 "when it serves", pid, os.getpid())

    # -- pid file --------------------------------------------------------------------------

    def _write_pid(self) -> None:
        path = self._pid_path = self.settings.pid
        if not path:
            return
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(f"{os.getpid()}\n")
            os.replace(tmp, path)
        except OSError as exc:
            self._pid_path = None
            raise BootError(f"--pid {path}: cannot write the pid file: "
                            f"{(exc.strerror or str(exc)).lower()}") from None

    def _remove_pid(self) -> None:
        path = self._pid_path
        if not path:
            return
        try:
            with open(path) as f:
                if f.read().strip() == str(os.getpid()):
                    os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("cannot remove the pid file %s: %s", path, exc)
