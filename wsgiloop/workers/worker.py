"""A worker process: what the master knows of it, and the set-up it runs after fork.

Rules:

* Constructing a :class:`Worker` changes nothing in the process; everything a worker
  process needs (signal dispositions, a fresh random seed, the stack-dump handler, the
  process title) happens in :meth:`Worker.run_in_child`, after fork, and only there.
* The worker and the master share one small memory page per worker (:class:`Status`):
  the worker writes a heartbeat, its state and its request count; the master only reads,
  except for clearing it before the fork.  No pipe, no syscall per heartbeat.
"""

from __future__ import annotations

import faulthandler
import logging
import mmap
import os
import random
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from .hooks import HookLog

log = logging.getLogger("wsgiloop.error")

BOOTING, READY, RETIRE, REQUEST_TIMEOUT = range(4)

#: Exit status of a worker that could not load the application.
EXIT_BOOT_ERROR = 3
#: Exit status of a worker that ended itself because a request ran past --request-timeout.
EXIT_REQUEST_TIMEOUT = 4

#: The signal the master sends to have a worker dump every thread's stack (faulthandler).
DUMP_STACK_SIGNAL = signal.SIGUSR2

_HEAD = struct.Struct("=dqqq")  # heartbeat (monotonic seconds), state, requests, retire kind
#: Why a worker retires (the ``kind`` of :meth:`Worker.ask_to_be_replaced`); index 0: none.
RETIRE_KINDS = ("", "max-requests", "max-rss")
_MESSAGE_SIZE = 1024


class Status:
    """The page a worker shares with the master (anonymous shared memory, made before
    the fork).  Writes are single aligned stores; readers tolerate a torn message."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _HEAD.size + _MESSAGE_SIZE)

    def reset(self) -> None:
        self._map[:] = b"\0" * len(self._map)
        self.beat()

    def beat(self) -> None:
        struct.pack_into("=d", self._map, 0, time.monotonic())

    @property
    def heartbeat(self) -> float:
        return struct.unpack_from("=d", self._map, 0)[0]

    @property
    def state(self) -> int:
        return struct.unpack_from("=q", self._map, 8)[0]

    @state.setter
    def state(self, value: int) -> None:
        struct.pack_into("=q", self._map, 8, value)

    @property
    def requests(self) -> int:
        return struct.unpack_from("=q", self._map, 16)[0]

    @requests.setter
    def requests(self, value: int) -> None:
        struct.pack_into("=q", self._map, 16, value)

    @property
    def retire_kind(self) -> str:
        """One of :data:`RETIRE_KINDS` ("" until the worker asks to retire)."""
        index = struct.unpack_from("=q", self._map, 24)[0]
        return RETIRE_KINDS[index] if 0 <= index < len(RETIRE_KINDS) else ""

    @retire_kind.setter
    def retire_kind(self, kind: str) -> None:
        struct.pack_into("=q", self._map, 24, RETIRE_KINDS.index(kind))

    @property
    def message(self) -> str:
        raw = self._map[_HEAD.size:].split(b"\0", 1)[0]
        return raw.decode("utf-8", "replace")

    @message.setter
    def message(self, text: str) -> None:
        data = text.encode("utf-8")[:_MESSAGE_SIZE - 1]
        self._map[_HEAD.size:_HEAD.size + len(data) + 1] = data + b"\0"

    def close(self) -> None:
        self._map.close()


class Worker:
    """One worker, numbered ``age`` (1, 2, ... in spawn order) and belonging to a
    ``generation`` (raised by each reload)."""

    def __init__(self, age: int, generation: int, status: Status) -> None:
        self.age = age
        self.generation = generation
        self.status = status
        self.pid = 0
        self.spawned_at = 0.0
        self.ready = False
        self.retiring = False  # asked to stop (TERM sent)
        self.killed = False  # SIGKILL sent by the master
        self.term_sent_at: float | None = None
        self.dump_sent_at: float | None = None
        self.abort_sent_at: float | None = None  # SIGABRT, for a worker_abort hook
        #: Why the master stopped it: "reload" (a new generation), "scale-down" (TTOU).
        self.stop_cause = ""
        self.has_abort_hook = False  # forked with a worker_abort hook (handles SIGABRT)
        #: For hooks, as gunicorn's workers have them: the settings and the error log.
        self.cfg: Any = None
        self.log = HookLog()
        #: The master's wake-up pipe (write end), poked by :meth:`ask_to_be_replaced`.
        self.wake_fd = -1
        #: With --metrics-bind: this worker's counters, shared with the master
        #: (a :class:`wsgiloop.metrics.MetricsBlock`); with --statsd-host, the client.
        self.metrics: Any = None
        self.statsd: Any = None

    def ask_to_be_replaced(self, reason: str, kind: str = "") -> None:
        """From the worker: have the master start a replacement now (the state page says
        RETIRE, with ``reason``; ``kind`` is one of :data:`RETIRE_KINDS`) -- without
        waiting for its next look at the page."""
        self.status.message = reason
        self.status.retire_kind = kind
        self.status.state = RETIRE
        if self.wake_fd >= 0:
            try:
                os.write(self.wake_fd, b"r")
            except OSError:
                pass  # the master is gone or its pipe is full: it will look anyway

    @property
    def ppid(self) -> int:
        return os.getppid()

    def run_in_child(self, target: Callable[[Worker], int], title: str,
                     error_stream: Any, signal_mask: Iterable[int] = ()) -> NoReturn:
        """After fork: set the process up, run ``target(self)``, exit with its status.

        The master forks with its signals blocked; once this process has its own
        handlers, ``signal_mask`` (the mask from before the fork) is restored, and a signal
        that came meanwhile is handled by them."""
        code = 1
        self.pid = os.getpid()
        try:
            # Until the worker's loop installs its own handlers: TERM, INT and QUIT end a
            # booting worker quietly, USR1 (reopen logs) has nothing to do yet.
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                signal.signal(signum, _exit_quietly)
            for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1):
                signal.signal(signum, signal.SIG_IGN)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
            random.seed()
            _set_title(f"wsgiloop: worker {self.age} [{title}]")
            self.watch_stack_dumps(error_stream)
            self.status.reset()
            code = target(self)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker %d failed", self.age)
            code = 1
        finally:
            try:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)


    _dump_fd = -1

    def watch_stack_dumps(self, stream: Any) -> None:
        """Dump every thread's stack to ``stream`` on the stack-dump signal (faulthandler).

        faulthandler keeps a file descriptor, not the file: it gets a private duplicate,
        so that reopening the logs (USR1) can never leave it pointing at a closed -- or
        worse, reused -- descriptor.  Call again after reopening the logs.
        """
        try:
            fd = os.dup(stream.fileno())
        except (AttributeError, OSError, ValueError):
            fd = os.dup(2)
        faulthandler.register(DUMP_STACK_SIGNAL, file=fd, all_threads=True)
        if self._dump_fd >= 0:
            os.close(self._dump_fd)
        self._dump_fd = fd


def _exit_quietly(signum: int, frame: Any) -> None:
    os._exit(0)


def _set_title(title: str) -> None:
    try:
        import setproctitle  # optional: process titles when installed
    except ImportError:
        return
    setproctitle.setproctitle(title)


def set_master_title(title: str) -> None:
    """Name the master process, when setproctitle is installed."""
    _set_title(title)
