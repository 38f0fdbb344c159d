"""The event loop: epoll readiness, callbacks, timers, signals and a small Future.

Rules this module keeps:

* Nothing is created at import time.  An :class:`IOLoop` is made by whoever runs it,
  after any fork; a loop used in a process other than the one that made it raises.
* Every method runs on the loop thread, except :meth:`IOLoop.call_soon_threadsafe`,
  which is the one narrow path for other threads.
* An exception escaping a callback or fd handler is logged with its traceback and the
  loop carries on.
* A callback that holds the loop longer than ``slow_callback_threshold`` seconds is
  reported by a watchdog thread with the loop thread's current stack.
"""

from __future__ import annotations

import collections
import heapq
import logging
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Generator
from typing import Any

log = logging.getLogger("wsgiloop.error")

READ = select.EPOLLIN if hasattr(select, "EPOLLIN") else 0x001
WRITE = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 0x004
ERROR = (select.EPOLLERR | select.EPOLLHUP) if hasattr(select, "EPOLLERR") else 0x018

_MAX_POLL_SECONDS = 3600.0


class _SelectorPoller:
    """epoll-shaped facade over :mod:`selectors`, for platforms without epoll."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._dormant: set[int] = set()  # registered with no read/write interest

    @staticmethod
    def _to_mask(events: int) -> int:
        mask = 0
        if events & READ:
            mask |= selectors.EVENT_READ
        if events & WRITE:
            mask |= selectors.EVENT_WRITE
        return mask

    def register(self, fd: int, events: int) -> None:
        mask = self._to_mask(events)
        if mask:
            self._selector.register(fd, mask)
        else:
            self._dormant.add(fd)  # selectors refuse an empty mask

    def modify(self, fd: int, events: int) -> None:
        mask = self._to_mask(events)
        if fd in self._dormant:
            if mask:
                self._dormant.discard(fd)
                self._selector.register(fd, mask)
        elif mask:
            self._selector.modify(fd, mask)
        else:
            self._selector.unregister(fd)
            self._dormant.add(fd)

    def unregister(self, fd: int) -> None:
        if fd in self._dormant:
            self._dormant.discard(fd)
        else:
            self._selector.unregister(fd)

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        ready = []
        for key, mask in self._selector.select(timeout):
            events = 0
            if mask & selectors.EVENT_READ:
                events |= READ
            if mask & selectors.EVENT_WRITE:
                events |= WRITE
            ready.append((key.fd, events))
        return ready

    def close(self) -> None:
        self._selector.close()


def _make_poller() -> Any:
    if hasattr(select, "epoll"):
        return select.epoll()
    return _SelectorPoller()


class Timer:
    """A scheduled call; :meth:`cancel` marks it dead and the heap drops it lazily."""

    __slots__ = ("deadline", "seq", "callback", "args", "cancelled", "_loop")

    def __init__(self, loop: IOLoop, deadline: float, seq: int,
                 callback: Callable[..., Any], args: tuple) -> None:
        self._loop = loop
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False

    def __lt__(self, other: Timer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback = None  # type: ignore[assignment]
            self.args = ()
            self._loop._timer_cancelled()


class CancelledError(Exception):
    """Raised from a Future's result after the Future was cancelled."""


class Future:
    """A result that arrives later.  Awaitable from coroutines run by :meth:`IOLoop.spawn`.

    Done-callbacks run on the loop via ``call_soon``, never inline in ``set_result``.
    """

    __slots__ = ("_loop", "_done", "_result", "_exception", "_callbacks", "_cancelled")

    def __init__(self, loop: IOLoop) -> None:
        self._loop = loop
        self._done = False
        self._cancelled = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future], Any]] = []

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled

    def result(self) -> Any:
        if not self._done:
            raise RuntimeError("Future is not done")
        if self._cancelled:
            raise CancelledError()
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        if not self._done:
            raise RuntimeError("Future is not done")
        return self._exception

    def add_done_callback(self, callback: Callable[[Future], Any]) -> None:
        if self._done:
            self._loop.call_soon(callback, self)
        else:
            self._callbacks.append(callback)

    def _finish(self) -> None:
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._loop.call_soon(callback, self)

    def set_result(self, result: Any) -> None:
        if self._done:
            raise RuntimeError("Future already done")
        self._result = result
        self._finish()

    def set_exception(self, exception: BaseException) -> None:
        if self._done:
            raise RuntimeError("Future already done")
        self._exception = exception
        self._finish()

    def cancel(self) -> bool:
        if self._done:
            return False
        self._cancelled = True
        self._finish()
        return True

    def __await__(self) -> Generator[Future, None, Any]:
        if not self._done:
            yield self
        return self.result()


class Task(Future):
    """Drives a coroutine on a loop: each Future it awaits resumes it when done; the
    Task holds the coroutine's outcome.

    :meth:`cancel` throws CancelledError into the coroutine where it waits (and cancels
    the plain Future or Task it waits on); the coroutine may catch it (to clean up, or
    even to carry on).  The Task is cancelled if the error escapes it.
    """

    __slots__ = ("_coro", "_waiting", "_must_cancel")

    def __init__(self, loop: IOLoop, coro: Coroutine[Any, Any, Any]) -> None:
        super().__init__(loop)
        self._coro = coro
        self._waiting: Future | None = None
        self._must_cancel = False
        loop.call_soon(self._step, None, None)

    def _wakeup(self, waited: Future) -> None:
        if waited is not self._waiting:
            return  # we were cancelled away from this future
        self._waiting = None
        self._step(waited, None)

    def _step(self, waited: Future | None, error: BaseException | None) -> None:
        if self._done:
            return
        if self._must_cancel:
            self._must_cancel = False
            error = CancelledError()
        coro = self._coro
        try:
            if error is not None:
                yielded = coro.throw(error)
            elif waited is None:
                yielded = coro.send(None)
            elif waited.cancelled():
                yielded = coro.throw(CancelledError())
            elif waited.exception() is not None:
                yielded = coro.throw(waited.exception())  # type: ignore[arg-type]
            else:
                yielded = coro.send(waited.result())
        except StopIteration as stop:
            Future.set_result(self, stop.value)
            return
        except CancelledError:
            Future.cancel(self)
            return
        except BaseException as exc:  # the task's owner decides what to do with it
            Future.set_exception(self, exc)
            return
        if not isinstance(yielded, Future):
            message = f"coroutine yielded {yielded!r}, not a wsgiloop Future"
            self._loop.call_soon(self._step, None, TypeError(message))
            return
        self._waiting = yielded
        yielded.add_done_callback(self._wakeup)
        if self._must_cancel:  # the coroutine cancelled its own task
            self.cancel()

    def cancel(self) -> bool:
        """Ask the coroutine to stop; False if the task has already finished."""
        if self._done:
            return False
        waiting = self._waiting
        if waiting is None:
            self._must_cancel = True  # a step is already scheduled: it throws
            return True
        self._waiting = None
        if type(waiting) is Future or isinstance(waiting, Task):
            waiting.cancel()
        self._loop.call_soon(self._step, None, CancelledError())
        return True


class _Watchdog(threading.Thread):
    """Reports, from a side thread, a loop iteration that runs longer than a threshold."""

    def __init__(self, loop: IOLoop, threshold: float) -> None:
        super().__init__(name="wsgiloop-watchdog", daemon=True)
        self._loop = loop
        self._threshold = threshold
        self._stop_event = threading.Event()

    def run(self) -> None:
        reported = -1
        while not self._stop_event.wait(self._threshold / 2):
            loop = self._loop
            started = loop._busy_since
            if started is None or loop._iteration == reported:
                continue
            busy = loop.clock() - started
            if busy < self._threshold:
                continue
            reported = loop._iteration
            frame = sys._current_frames().get(loop._thread_ident or -1)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no stack)\n"
            log.warning("event loop blocked for %.2fs by a callback; its stack:\n%s",
                        busy, stack)

    def stop(self) -> None:
        self._stop_event.set()


_running = threading.local()


class IOLoop:
    """A single-threaded reactor over epoll.

    Handlers are called as ``handler(fd, events)`` with the epoll event bits.
    """

    @staticmethod
    def current() -> IOLoop:
        """The loop running on this thread (raises RuntimeError when none is)."""
        loop = getattr(_running, "loop", None)
        if loop is None:
            raise RuntimeError("no IOLoop is running on this thread")
        return loop

    def __init__(self, slow_callback_threshold: float | None = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        #: The loop's clock (monotonic seconds); tests may pass a fake one.
        self.clock = clock
        self._pid = os.getpid()
        self._poller = _make_poller()
        self._handlers: dict[int, Callable[[int, int], Any]] = {}
        self._ready: collections.deque = collections.deque()
        self._to_flush: list[Any] = []
        self._timers: list[Timer] = []
        self._timer_seq = 0
        self._cancelled_timers = 0
        self._running = False
        self._stopping = False
        self._closed = False
        self._thread_ident: int | None = None
        self._busy_since: float | None = None
        self._iteration = 0
        self._slow_threshold = slow_callback_threshold
        self._signal_handlers: dict[int, Callable[[int], Any]] = {}
        self._previous_handlers: dict[int, Any] = {}
        self._old_wakeup_fd: int | None = None
        self._waker_r, self._waker_w = self._make_waker()
        self.add_handler(self._waker_r, self._drain_waker, READ)
        self._signal_sock: socket.socket | None = None
        self._signal_sock_w: socket.socket | None = None

    # -- wake-up -----------------------------------------------------------------------

    @staticmethod
    def _make_waker() -> tuple[int, int]:
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            return fd, fd
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        return r, w

    def _wake(self) -> None:
        try:
            if self._waker_r == self._waker_w:
                os.eventfd_write(self._waker_w, 1)
            else:
                os.write(self._waker_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already awake, or closing

    def _drain_waker(self, fd: int, events: int) -> None:
        try:
            if self._waker_r == self._waker_w:
                os.eventfd_read(fd)
            else:
                while os.read(fd, 4096):
                    pass
        except (BlockingIOError, OSError):
            pass

    # -- fd handlers ---------------------------------------------------------------------

    def add_handler(self, fd: int, handler: Callable[[int, int], Any], events: int,
                    exclusive: bool = False) -> None:
        """Call ``handler(fd, events)`` when ``fd`` is ready.  ``exclusive`` (epoll only)
        wakes just one of the processes waiting on a shared fd, such as a listening
        socket shared by workers."""
        self._handlers[fd] = handler
        if exclusive and hasattr(select, "EPOLLEXCLUSIVE") and not isinstance(
                self._poller, _SelectorPoller):
            self._poller.register(fd, events | ERROR | select.EPOLLEXCLUSIVE)
        else:
            self._poller.register(fd, events | ERROR)

    def update_handler(self, fd: int, events: int) -> None:
        self._poller.modify(fd, events | ERROR)

    def remove_handler(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is None:
            return
        try:
            self._poller.unregister(fd)
        except (OSError, KeyError, ValueError):
            pass

    # -- callbacks and timers -------------------------------------------------------------

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the next loop pass.  Loop thread only."""
        self._ready.append((callback, args))

    def flush_soon(self, stream: Any) -> None:
        """Call ``stream.flush()`` at the end of this loop pass.  Loop thread only."""
        self._to_flush.append(stream)

    @property
    def pid(self) -> int:
        """The process that made the loop (a child of fork must make its own)."""
        return self._pid

    def in_loop_thread(self) -> bool:
        """True on the thread running the loop (or that last ran it)."""
        return threading.get_ident() == self._thread_ident

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`call_soon`, from any thread: wakes the loop."""
        self._ready.append((callback, args))
        if threading.get_ident() != self._thread_ident:
            self._wake()

    def time(self) -> float:
        return self.clock()

    def call_at(self, deadline: float, callback: Callable[..., Any], *args: Any) -> Timer:
        self._timer_seq += 1
        timer = Timer(self, deadline, self._timer_seq, callback, args)
        heapq.heappush(self._timers, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.clock() + delay, callback, *args)

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1
        if self._cancelled_timers > 512 and self._cancelled_timers > len(self._timers) // 2:
            # In place: run_forever holds a reference to this list.
            self._timers[:] = [t for t in self._timers if not t.cancelled]
            heapq.heapify(self._timers)
            self._cancelled_timers = 0

    # -- coroutines ----------------------------------------------------------------------

    def create_future(self) -> Future:
        return Future(self)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Future:
        """Run a coroutine on this loop as a :class:`Task` (a Future of its outcome)."""
        return Task(self, coro)

    def run_until_complete(self, coro_or_future: Any) -> Any:
        if isinstance(coro_or_future, Future):
            future = coro_or_future
        else:
            future = self.spawn(coro_or_future)
        future.add_done_callback(lambda _f: self.stop())
        self.run_forever()
        return future.result()

    # -- signals -------------------------------------------------------------------------

    def add_signal_handler(self, signum: int, callback: Callable[[int], Any]) -> None:
        """Call ``callback(signum)`` on the loop when the signal arrives (main thread only).

        The Python-level handler does nothing; the C handler writes the signal number to a
        wake-up socket, which the loop reads and dispatches from.
        """
        if self._signal_sock is None:
            self._signal_sock, self._signal_sock_w = socket.socketpair()
            self._signal_sock.setblocking(False)
            self._signal_sock_w.setblocking(False)
            self._old_wakeup_fd = signal.set_wakeup_fd(self._signal_sock_w.fileno(),
                                                       warn_on_full_buffer=False)
            self.add_handler(self._signal_sock.fileno(), self._read_signals, READ)
        if signum not in self._signal_handlers:
            self._previous_handlers[signum] = signal.getsignal(signum)
        self._signal_handlers[signum] = callback
        signal.signal(signum, _record_only)

    def remove_signal_handlers(self) -> None:
        for signum in self._signal_handlers:
            previous = self._previous_handlers.pop(signum, None)
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._signal_handlers.clear()
        if self._signal_sock is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd if self._old_wakeup_fd is not None else -1)
            self.remove_handler(self._signal_sock.fileno())
            self._signal_sock.close()
            if self._signal_sock_w is not None:
                self._signal_sock_w.close()
            self._signal_sock = self._signal_sock_w = None

    def _read_signals(self, fd: int, events: int) -> None:
        assert self._signal_sock is not None
        try:
            data = self._signal_sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            handler = self._signal_handlers.get(signum)
            if handler is not None:
                self._run_callback(handler, (signum,))

    # -- running -------------------------------------------------------------------------

    def _run_callback(self, callback: Callable[..., Any], args: tuple) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("exception in callback %r", callback)

    def stop(self) -> None:
        """Stop after the current pass.  Safe from signal handlers on the loop."""
        self._stopping = True
        self._wake()

    def run_forever(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError("this IOLoop was made in another process; make a new one after fork")
        if self._running:
            raise RuntimeError("IOLoop is already running")
        self._running = True
        self._stopping = False
        self._thread_ident = threading.get_ident()
        outer, _running.loop = getattr(_running, "loop", None), self
        watchdog = None
        if self._slow_threshold:
            watchdog = _Watchdog(self, self._slow_threshold)
            watchdog.start()
        ready = self._ready
        timers = self._timers
        handlers = self._handlers
        poll = self._poller.poll
        monotonic = self.clock
        try:
            while not self._stopping:
                timers = self._timers
                if ready or self._to_flush:
                    timeout = 0.0
                elif timers:
                    timeout = max(0.0, min(timers[0].deadline - monotonic(), _MAX_POLL_SECONDS))
                else:
                    timeout = _MAX_POLL_SECONDS
                try:
                    events = poll(timeout)
                except InterruptedError:
                    events = ()
                self._iteration += 1
                self._busy_since = monotonic()
                for fd, mask in events:
                    handler = handlers.get(fd)
                    if handler is None:
                        continue
                    try:
                        handler(fd, mask)
                    except Exception:
                        log.exception("exception in handler for fd %d", fd)
                # The names used below would keep the last handler, callback and streams
                # alive until the next pass -- a whole batch of closed connections on an
                # idle server -- so each pass drops them.
                handler = None
                if timers:
                    now = monotonic()
                    while timers and timers[0].deadline <= now:
                        timer = heapq.heappop(timers)
                        if timer.cancelled:
                            self._cancelled_timers -= 1
                            continue
                        timer.cancelled = True  # fired: a later cancel() is a no-op
                        ready.append((timer.callback, timer.args))
                        timer.callback, timer.args = None, ()  # type: ignore[assignment]
                    timer = None
                for _ in range(len(ready)):
                    callback, args = ready.popleft()
                    try:
                        callback(*args)
                    except Exception:
                        log.exception("exception in callback %r", callback)
                callback = args = None
                if self._to_flush:
                    self._flush_streams()
                self._busy_since = None
        finally:
            _running.loop = outer
            self._busy_since = None
            self._running = False
            if watchdog is not None:
                watchdog.stop()

    def _flush_streams(self) -> None:
        streams, self._to_flush = self._to_flush, []
        for stream in streams:
            try:
                stream.flush()
            except Exception:
                log.exception("exception flushing %r", stream)

    def close(self, all_fds: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if self._signal_sock is not None:
            self.remove_signal_handlers()
        if all_fds:
            for fd in list(self._handlers):
                if fd not in (self._waker_r, self._waker_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        self._handlers.clear()
        self._poller.close()
        os.close(self._waker_r)
        if self._waker_w != self._waker_r:
            os.close(self._waker_w)


def _record_only(signum: int, frame: Any) -> None:
    """Python-level signal handler: the wake-up fd already carries the signal number."""
