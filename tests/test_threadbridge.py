"""LoopBridge: a worker thread waits for work done on the loop thread."""

from __future__ import annotations

import threading

import pytest

from wsgiloop.ioloop import IOLoop
from wsgiloop.threadbridge import LoopBridge


def run_in_thread(loop: IOLoop, work):
    """Run ``work()`` on a thread while the loop runs; its outcome as (result, error)."""
    outcome: list = []

    def thread_main() -> None:
        try:
            outcome.append((work(), None))
        except BaseException as exc:
            outcome.append((None, exc))
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=thread_main)
    loop.call_soon(thread.start)
    loop.run_forever()
    thread.join(5)
    return outcome[0]


def test_the_result_comes_back_later_from_a_callback():
    loop = IOLoop()
    bridge = LoopBridge(loop)
    on_loop = []

    def action(done, fail):
        on_loop.append(loop.in_loop_thread())
        loop.call_later(0.01, done, 42)

    assert run_in_thread(loop, lambda: bridge.call(action)) == (42, None)
    assert on_loop == [True]
    loop.close()


def test_an_error_is_raised_in_the_waiting_thread():
    loop = IOLoop()
    bridge = LoopBridge(loop)
    result, error = run_in_thread(loop, lambda: bridge.call(
        lambda done, fail: fail(ValueError("bad header"))))
    assert isinstance(error, ValueError)
    result, error = run_in_thread(loop, lambda: bridge.call(
        lambda done, fail: 1 / 0))  # raised by the action itself
    assert isinstance(error, ZeroDivisionError)
    loop.close()


def test_cancel_ends_the_wait_and_later_calls():
    loop = IOLoop()
    bridge = LoopBridge(loop)
    calls = []

    def never(done, fail):  # what it waits for will not come: the loop cancels
        calls.append(1)
        loop.call_later(0.01, bridge.cancel)

    def work():
        first = bridge.call(never)
        second = bridge.call(never)  # returns at once, without running the action
        return first, second

    assert run_in_thread(loop, work) == ((None, None), None)
    assert calls == [1]
    assert bridge.cancelled
    loop.close()


def test_a_call_from_the_loop_thread_is_refused():
    loop = IOLoop()
    bridge = LoopBridge(loop)
    errors = []

    def on_loop():
        with pytest.raises(RuntimeError):
            bridge.call(lambda done, fail: done())
        errors.append("raised")
        loop.stop()

    loop.call_soon(on_loop)
    loop.run_forever()
    assert errors == ["raised"]
    loop.close()
