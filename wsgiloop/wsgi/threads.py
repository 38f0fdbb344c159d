"""Running WSGI applications on worker threads while the loop does the socket I/O:
:class:`WorkerThreads` (the pool) and :class:`ThreadResponder` (the responder a worker
thread answers through, each call carried to the loop by a
:class:`~wsgiloop.threadbridge.LoopBridge`)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from ..delegate import Responder
from ..ioloop import IOLoop
from ..threadbridge import LoopBridge

log = logging.getLogger("wsgiloop.error")


class WorkerThreads:
    """Up to ``limit`` daemon threads, started on demand, running submitted calls.

    Daemon threads, because one may be waiting on a client when the process exits.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._waiting = 0  # calls submitted and not yet taken by a thread
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], Any]) -> None:
        with self._lock:
            self._waiting += 1
            # A new thread unless the idle ones can take every call waiting: one woken
            # for an earlier call counts as idle until it has taken that call.
            if self._waiting > self._idle and len(self._threads) < self._limit:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"wsgiloop-worker-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
        self._queue.put(call)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            call = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._waiting -= 1
            try:
                call()
            except Exception:
                log.exception("unhandled error on a worker thread")
            call = None  # not kept (with its response and connection) while idle


class ThreadResponder:
    """The responder for a response produced on a worker thread.

    Every call is carried out on the loop thread and the worker waits for it, so errors
    (an invalid header, say) come back to the worker as they would on the loop; ``write``
    returns only once the stream is back under its high-water mark, which is how a
    worker feels back-pressure.  If the client goes away, every wait ends at once and
    ``client_gone`` turns true; the worker then stops and closes the iterable itself, so
    ``on_abort`` callbacks are not needed here.
    """

    def __init__(self, responder: Responder) -> None:
        self._responder = responder
        self._bridge = LoopBridge(responder.loop)
        responder.on_abort(self._bridge.cancel)  # on the loop thread, before the worker starts

    @property
    def head_sent(self) -> bool:
        return self._responder.head_sent

    @property
    def client_gone(self) -> bool:
        return self._bridge.cancelled or self._responder.client_gone

    @property
    def loop(self) -> IOLoop:
        return self._responder.loop

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.start(status, headers)))

    def write(self, data: bytes) -> bool:
        def action(done: Callable[..., None], fail: Callable[..., None]) -> None:
            responder = self._responder
            if responder.client_gone or responder.write(data):
                done(True)
            else:
                responder.when_writable(done)

        self._bridge.call(action)
        return not self.client_gone

    def write_file(self, fd: int, offset: int, count: int) -> bool:
        def action(done: Callable[..., None], fail: Callable[..., None]) -> None:
            if self._responder.write_file(fd, offset, count):
                self._responder.when_flushed(lambda: done(True))
            else:
                done(False)

        return bool(self._bridge.call(action))

    def when_flushed(self, callback: Callable[[], Any]) -> None:
        callback()  # write_file already waited for the flush

    def when_writable(self, callback: Callable[[], Any]) -> None:
        callback()  # write already waited for the drain

    def on_abort(self, callback: Callable[[], Any]) -> None:
        """Not needed: the worker notices ``client_gone`` and cleans up itself."""

    def respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.respond(status, headers, body)))

    def finish(self) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.finish()))

    def abort(self) -> None:
        self._bridge.call(lambda done, fail: done(self._responder.abort()))
