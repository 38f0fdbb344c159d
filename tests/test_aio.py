"""``wsgiloop.aio``: tasks, sleeping, gathering, events, queues, timeouts, cancellation
and the executor, each run to completion on a private :class:`IOLoop`."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from wsgiloop import aio
from wsgiloop.ioloop import CancelledError, IOLoop


def run(coro: Any) -> Any:
    loop = IOLoop(slow_callback_threshold=None)
    try:
        return loop.run_until_complete(aio.Task(loop, coro))
    finally:
        loop.close()


def test_sleep_and_gather():
    async def job(delay: float, value: int) -> int:
        await aio.sleep(delay)
        return value

    async def main() -> list[int]:
        return await aio.gather(job(0.02, 1), job(0.01, 2), aio.sleep(0, 3))

    started = time.monotonic()
    assert run(main()) == [1, 2, 3]
    assert time.monotonic() - started < 1


def test_gather_fails_with_the_first_error():
    async def bad() -> None:
        await aio.sleep(0)
        raise ValueError("x")

    async def main() -> None:
        await aio.gather(aio.sleep(0.01), bad())

    with pytest.raises(ValueError):
        run(main())


def test_event():
    async def main() -> list[Any]:
        event = aio.Event()
        order: list[Any] = []

        async def waiter(tag: str) -> None:
            await event.wait()
            order.append(tag)

        tasks = [aio.spawn(waiter("a")), aio.spawn(waiter("b"))]
        await aio.sleep(0.01)
        order.append(event.waiters)
        event.set()
        await aio.gather(*tasks)
        order.append(event.is_set())
        event.clear()
        try:
            await event.wait(timeout=0.01)
        except TimeoutError:
            order.append("timeout")
        order.append(event.waiters)
        return order

    assert run(main()) == [2, "a", "b", True, "timeout", 0]


def test_queue():
    async def main() -> list[Any]:
        queue = aio.Queue(maxsize=1)
        got: list[Any] = []

        async def consumer() -> None:
            for _ in range(3):
                got.append(await queue.get())

        task = aio.spawn(consumer())
        for i in range(3):
            await queue.put(i)
        await task
        queue.put_nowait("x")
        with pytest.raises(aio.QueueFull):
            queue.put_nowait("y")
        assert queue.get_nowait() == "x"
        with pytest.raises(aio.QueueEmpty):
            queue.get_nowait()
        with pytest.raises(TimeoutError):
            await queue.get(timeout=0.01)
        queue.put_nowait("after-timeout")  # not swallowed by the timed-out getter
        got.append(await queue.get())
        return got

    assert run(main()) == [0, 1, 2, "after-timeout"]


def test_queue_put_waits_for_room():
    async def main() -> list[Any]:
        queue = aio.Queue(maxsize=1)
        queue.put_nowait(1)
        put = queue.put(2)
        await aio.sleep(0.01)
        state = [put.done()]
        state.append(await queue.get())
        await put
        state.append(await queue.get())
        return state

    assert run(main()) == [False, 1, 2]


def test_with_timeout_cancels_the_task():
    log: list[str] = []

    async def slow() -> None:
        try:
            await aio.sleep(10)
        except CancelledError:
            log.append("cancelled")
            raise

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await aio.with_timeout(slow(), 0.01)
        await aio.sleep(0.01)
        assert await aio.with_timeout(aio.sleep(0, "fast"), 1) == "fast"

    run(main())
    assert log == ["cancelled"]


def test_task_cancel():
    async def main() -> list[Any]:
        log: list[Any] = []

        async def worker() -> str:
            try:
                await aio.sleep(10)
            except CancelledError:
                log.append("caught")
                await aio.sleep(0)
                return "cleaned up"
            return "finished"

        async def plain() -> None:
            await aio.sleep(10)

        task = aio.spawn(worker())
        await aio.sleep(0.01)
        task.cancel()
        log.append(await task)
        other = aio.spawn(plain())
        await aio.sleep(0)
        other.cancel()
        try:
            await other
        except CancelledError:
            log.append("other cancelled")
        log.append(other.cancelled())
        log.append(other.cancel())  # already done
        return log

    assert run(main()) == ["caught", "cleaned up", "other cancelled", True, False]


def test_task_rejects_foreign_awaitables():
    class Foreign:
        def __await__(self):
            yield "not a future"

    async def main() -> str:
        try:
            await Foreign()
        except TypeError as exc:
            return str(exc)
        return "no error"

    assert "not a wsgiloop Future" in run(main())


def test_run_in_executor():
    import threading

    async def main() -> list[Any]:
        names = await aio.gather(aio.run_in_executor(lambda: threading.current_thread().name),
                                 aio.run_in_executor(pow, 2, 10))
        try:
            await aio.run_in_executor(int, "not a number")
        except ValueError:
            names.append("error passed on")
        return names

    result = run(main())
    assert result[0].startswith("wsgiloop-aio") and result[1:] == [1024, "error passed on"]


def test_aio_import_makes_no_threads():
    import subprocess
    import sys

    code = ("import threading, wsgiloop.aio, wsgiloop.web; "
            "assert threading.active_count() == 1, threading.enumerate()")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=os.path.dirname(os.path.dirname(__file__)))
