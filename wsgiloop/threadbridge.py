"""The one way a thread other than the loop's waits for work done on the loop.

:meth:`LoopBridge.call` runs ``action(done, fail)`` on the loop thread and blocks the
calling thread until the action calls ``done(result)`` (returned) or ``fail(error)``
(raised) -- at once or later, from a callback.  :meth:`LoopBridge.cancel`, on the loop
thread, ends the wait in progress and makes every later call return None at once: what
the bridge waits for will not come (the client has gone).

Rules: ``call`` is never made on the loop thread (it would wait for itself and raise
``RuntimeError`` instead); one thread calls at a time; an exception raised by the action
itself is handed to the caller as if given to ``fail``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .ioloop import IOLoop

Action = Callable[[Callable[..., None], Callable[[BaseException], None]], Any]


class LoopBridge:
    """Carries calls from one worker thread to ``loop`` and waits for their outcome."""

    def __init__(self, loop: IOLoop) -> None:
        self.loop = loop
        self._cancelled = False
        self._waiting: threading.Event | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """End the current wait and refuse later ones (on the loop thread)."""
        self._cancelled = True
        waiting = self._waiting
        if waiting is not None:
            waiting.set()

    def call(self, action: Action) -> Any:
        """``action(done, fail)`` on the loop; its result, its error raised, or None when
        cancelled."""
        if self.loop.in_loop_thread():
            raise RuntimeError("a loop bridge call from the loop thread would never return")
        event = threading.Event()
        outcome: list[tuple[Any, BaseException | None]] = []

        def done(result: Any = None) -> None:
            outcome.append((result, None))
            event.set()

        def fail(error: BaseException) -> None:
            outcome.append((None, error))
            event.set()

        def on_loop() -> None:
            try:
                action(done, fail)
            except BaseException as exc:  # handed to the waiting thread, which decides
                fail(exc)

        self._waiting = event
        if self._cancelled:
            return None
        self.loop.call_soon_threadsafe(on_loop)
        event.wait()
        self._waiting = None
        if not outcome:
            return None  # cancelled while waiting
        result, error = outcome[0]
        if error is not None:
            raise error
        return result
