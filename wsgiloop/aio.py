"""Coroutine helpers for code run on an :class:`~wsgiloop.ioloop.IOLoop`.

Everything here yields :class:`~wsgiloop.ioloop.Future` objects, so it works inside
coroutines driven by ``IOLoop.spawn`` and :func:`spawn` (both make a cancellable
:class:`~wsgiloop.ioloop.Task`).  Promises:

* every function and class runs on the loop thread and uses :meth:`IOLoop.current`,
  except :func:`run_in_executor`'s function, which runs on a worker thread, its result
  coming back through ``call_soon_threadsafe``;
* importing this module creates no thread, loop or file descriptor: the executor behind
  :func:`run_in_executor` is made on first use (and made afresh in a forked child);
* cancelling a :class:`Task` throws :class:`~wsgiloop.ioloop.CancelledError` into its
  coroutine at the ``await`` where it waits, and cancels the future it was waiting on
  when that is a plain Future or another :class:`Task`;
* a waiter that gives up (timeout, cancel) is removed from :class:`Event` and
  :class:`Queue`: nothing piles up behind clients that went away.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .ioloop import CancelledError, Future, IOLoop, Task

__all__ = [
    "CancelledError", "Event", "Queue", "QueueEmpty", "QueueFull", "Task", "gather",
    "run_in_executor", "set_executor_workers", "shutdown_executor", "sleep", "spawn",
    "with_timeout",
]


def _set_result(future: Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: Future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _cancellable(future: Future) -> bool:
    """Cancel only what cancelling can't corrupt: plain Futures and Tasks (a Future
    subclass of someone else's may not expect it)."""
    return type(future) is Future or isinstance(future, Task)


def spawn(coro: Coroutine[Any, Any, Any], loop: IOLoop | None = None) -> Task:
    """Start ``coro`` as a cancellable :class:`Task` on ``loop`` (default: the current)."""
    return Task(loop or IOLoop.current(), coro)


def _as_future(awaitable: Awaitable[Any] | Future, loop: IOLoop) -> Future:
    if isinstance(awaitable, Future):
        return awaitable
    if isinstance(awaitable, Coroutine):
        return Task(loop, awaitable)

    async def wrap() -> Any:
        return await awaitable

    return Task(loop, wrap())


def sleep(seconds: float, result: Any = None) -> Future:
    """A Future that resolves to ``result`` after ``seconds`` (0: on the next loop pass)."""
    loop = IOLoop.current()
    future = loop.create_future()
    timer = loop.call_later(max(0.0, seconds), _set_result, future, result)
    future.add_done_callback(lambda f: timer.cancel())
    return future


def with_timeout(awaitable: Awaitable[Any] | Future, timeout: float) -> Future:
    """Resolve like ``awaitable``, or fail with :class:`TimeoutError` after ``timeout``
    seconds, cancelling ``awaitable`` then (a coroutine runs as a :class:`Task`).
    Cancelling the returned Future cancels ``awaitable`` too."""
    loop = IOLoop.current()
    inner = _as_future(awaitable, loop)
    outer = loop.create_future()

    def on_timeout() -> None:
        if not outer.done():
            if _cancellable(inner):
                inner.cancel()  # first, so its waiter bookkeeping runs before the wake-up
            if not outer.done():
                outer.set_exception(TimeoutError(f"timed out after {timeout} seconds"))

    timer = loop.call_later(max(0.0, timeout), on_timeout)

    def on_inner(f: Future) -> None:
        timer.cancel()
        if outer.done():
            return
        if f.cancelled():
            outer.cancel()
        elif f.exception() is not None:
            outer.set_exception(f.exception())  # type: ignore[arg-type]
        else:
            outer.set_result(f.result())

    def on_outer(f: Future) -> None:
        if f.cancelled():
            timer.cancel()
            if not inner.done() and _cancellable(inner):
                inner.cancel()

    inner.add_done_callback(on_inner)
    outer.add_done_callback(on_outer)
    return outer


def gather(*awaitables: Awaitable[Any] | Future) -> Future:
    """Resolve to the list of results, in order; the first failure fails it (the others
    keep running).  Cancelling it cancels them all."""
    loop = IOLoop.current()
    futures = [_as_future(a, loop) for a in awaitables]
    outer = loop.create_future()
    if not futures:
        outer.set_result([])
        return outer
    remaining = [len(futures)]

    def on_done(f: Future) -> None:
        if outer.done():
            return
        if f.cancelled():
            outer.cancel()
        elif f.exception() is not None:
            outer.set_exception(f.exception())  # type: ignore[arg-type]
        else:
            remaining[0] -= 1
            if remaining[0] == 0:
                outer.set_result([x.result() for x in futures])

    def on_outer(f: Future) -> None:
        if f.cancelled():
            for x in futures:
                if not x.done() and _cancellable(x):
                    x.cancel()

    for f in futures:
        f.add_done_callback(on_done)
    outer.add_done_callback(on_outer)
    return outer


class Event:
    """A flag coroutines can wait for.  Loop thread only.

    :meth:`wait` returns a Future that resolves (to True) when the flag is set; set wakes
    every waiter at once.  ``waiters`` counts those still waiting.
    """

    def __init__(self) -> None:
        self._value = False
        self._waiters: dict[Future, None] = {}

    def is_set(self) -> bool:
        return self._value

    @property
    def waiters(self) -> int:
        """How many are waiting (a waiter that gave up no longer counts)."""
        return sum(1 for future in self._waiters if not future.done())

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, {}
        for future in waiters:
            if not future.done():
                future.set_result(True)

    def clear(self) -> None:
        self._value = False

    def wait(self, timeout: float | None = None) -> Future:
        """A Future for the flag; with ``timeout``, it fails with TimeoutError instead."""
        loop = IOLoop.current()
        future = loop.create_future()
        if self._value:
            future.set_result(True)
            return future
        self._waiters[future] = None
        future.add_done_callback(self._forget)
        if timeout is not None:
            return with_timeout(future, timeout)
        return future

    def _forget(self, future: Future) -> None:
        self._waiters.pop(future, None)


class QueueEmpty(Exception):
    """:meth:`Queue.get_nowait` on an empty queue."""


class QueueFull(Exception):
    """:meth:`Queue.put_nowait` on a full queue."""


class Queue:
    """A first-in first-out queue for coroutines.  Loop thread only.

    ``maxsize`` 0 means unbounded; otherwise :meth:`put` waits while the queue is full.
    Items go to waiting getters in the order they started waiting.
    """

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be 0 (unbounded) or positive")
        self.maxsize = maxsize
        self._items: collections.deque[Any] = collections.deque()
        self._getters: collections.deque[Future] = collections.deque()
        self._putters: collections.deque[tuple[Future, Any]] = collections.deque()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def put_nowait(self, item: Any) -> None:
        """Add ``item`` now; raises :class:`QueueFull` when there is no room."""
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(item)
                return
        if self.full():
            raise QueueFull()
        self._items.append(item)

    def put(self, item: Any, timeout: float | None = None) -> Future:
        """A Future that resolves (to None) once ``item`` is in the queue."""
        loop = IOLoop.current()
        future = loop.create_future()
        try:
            self.put_nowait(item)
        except QueueFull:
            self._putters.append((future, item))
            return with_timeout(future, timeout) if timeout is not None else future
        future.set_result(None)
        return future

    def get_nowait(self) -> Any:
        """Take the next item now; raises :class:`QueueEmpty` when there is none."""
        if not self._items:
            raise QueueEmpty()
        item = self._items.popleft()
        while self._putters:
            putter, waiting_item = self._putters.popleft()
            if not putter.done():
                self._items.append(waiting_item)
                putter.set_result(None)
                break
        return item

    def get(self, timeout: float | None = None) -> Future:
        """A Future for the next item."""
        loop = IOLoop.current()
        future = loop.create_future()
        try:
            future.set_result(self.get_nowait())
        except QueueEmpty:
            self._getters.append(future)
            future.add_done_callback(self._forget_getter)
            return with_timeout(future, timeout) if timeout is not None else future
        return future

    def _forget_getter(self, future: Future) -> None:
        if future.cancelled():
            try:
                self._getters.remove(future)
            except ValueError:
                pass


# -- the executor ------------------------------------------------------------------------------

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_executor_workers = min(32, (os.cpu_count() or 1) + 4)


def _get_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=_executor_workers, thread_name_prefix="wsgiloop-aio")
        return _executor


def set_executor_workers(count: int) -> None:
    """Bound the executor to ``count`` threads (applies to an executor not yet made)."""
    global _executor_workers
    if count < 1:
        raise ValueError("the executor needs at least one thread")
    _executor_workers = count


def shutdown_executor(wait: bool = True) -> None:
    """Stop the executor's threads; the next :func:`run_in_executor` makes a new one."""
    global _executor
    with _executor_lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=wait)


def _forget_executor_after_fork() -> None:
    global _executor, _executor_lock
    _executor = None  # its threads did not survive the fork
    _executor_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor_after_fork)


def run_in_executor(func: Callable[..., Any], *args: Any) -> Future:
    """Run ``func(*args)`` on the shared bounded thread pool; a Future for its result.

    Cancelling the Future before the call starts keeps it from running; a call that has
    started runs to the end and its result is dropped.
    """
    loop = IOLoop.current()
    future = loop.create_future()

    def deliver(done: concurrent.futures.Future) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            loop.call_soon_threadsafe(_set_exception, future, error)
        else:
            loop.call_soon_threadsafe(_set_result, future, done.result())

    work = _get_executor().submit(func, *args)
    work.add_done_callback(deliver)
    future.add_done_callback(lambda f: work.cancel() if f.cancelled() else None)
    return future
