"""IOLoop: callbacks, timers, fd handlers, signals, coroutines, watchdog, fork guard."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import threading
import time

import pytest
from support import run_for

from wsgiloop.ioloop import ERROR, READ, WRITE, IOLoop, _SelectorPoller

LOGGER = "wsgiloop.error"


_guards: list[threading.Timer] = []


@pytest.fixture
def loop():
    loop = IOLoop(slow_callback_threshold=None)
    yield loop
    while _guards:  # before the loop's fds close and their numbers get reused
        _guards.pop().cancel()
    loop.close()


def guard(loop: IOLoop, seconds: float = 3.0) -> threading.Timer:
    """Stop a test that hangs: stop the loop from another thread after ``seconds``."""
    timer = threading.Timer(seconds, loop.call_soon_threadsafe, (loop.stop,))
    timer.daemon = True
    timer.start()
    _guards.append(timer)
    return timer


def sleep(loop: IOLoop, delay: float, value: object = None):
    future = loop.create_future()
    loop.call_later(delay, future.set_result, value)
    return future


# -- callbacks ------------------------------------------------------------------------------


def test_callbacks_run_in_order(loop):
    seen = []
    for i in range(10):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == list(range(10))


def test_callback_scheduled_from_callback_runs_on_a_later_pass(loop):
    seen = []

    def first():
        seen.append("first")
        loop.call_soon(seen.append, "nested")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.call_soon(loop.call_soon, loop.stop)
    loop.run_forever()
    assert seen == ["first", "second", "nested"]


def test_exception_in_callback_is_logged_and_loop_continues(loop, caplog):
    seen = []

    def broken():
        raise ValueError("boom in callback")

    loop.call_soon(broken)
    loop.call_soon(seen.append, "after")
    loop.call_later(0.01, seen.append, "timer after")
    loop.call_later(0.02, loop.stop)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        loop.run_forever()
    assert seen == ["after", "timer after"]
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], ValueError)
    assert "boom in callback" in caplog.text


def test_exception_in_fd_handler_is_logged_and_loop_continues(loop, caplog):
    a, b = socket.socketpair()
    try:
        calls = []

        def handler(fd, events):
            calls.append(fd)
            a.recv(100)
            raise RuntimeError("boom in handler")

        loop.add_handler(a.fileno(), handler, READ)
        b.send(b"x")
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            run_for(loop, 0.05)
        assert calls == [a.fileno()]
        assert "boom in handler" in caplog.text
        loop.remove_handler(a.fileno())
    finally:
        a.close()
        b.close()


def test_call_soon_threadsafe_wakes_a_blocked_loop(loop):
    assert not loop._timers  # nothing to bound the poll: it would sleep for an hour
    ran = threading.Event()
    ran_on = []

    def callback():
        ran_on.append(threading.get_ident())
        ran.set()
        loop.stop()

    def other_thread():
        time.sleep(0.1)  # let the loop block in poll first
        loop.call_soon_threadsafe(callback)

    safety = threading.Timer(3.0, loop.call_soon_threadsafe, (loop.stop,))
    safety.daemon = True
    thread = threading.Thread(target=other_thread)
    started = time.monotonic()
    thread.start()
    safety.start()
    try:
        loop.run_forever()
    finally:
        safety.cancel()
        thread.join()
    elapsed = time.monotonic() - started
    assert ran.is_set()
    assert ran_on == [threading.get_ident()]  # run on the loop thread, not the caller's
    assert elapsed < 1.0


def test_stop_from_callback_ends_run_forever_and_loop_can_run_again(loop):
    seen = []
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(seen.append, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [1]


def test_run_forever_refuses_to_nest(loop):
    errors = []

    def nested():
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop.call_soon(nested)
    loop.run_forever()
    assert len(errors) == 1


# -- timers ---------------------------------------------------------------------------------


def test_timers_fire_in_deadline_order(loop):
    seen = []
    now = loop.time()
    for delay in (0.05, 0.01, 0.04, 0.02, 0.03):
        loop.call_at(now + delay, seen.append, delay)
    loop.call_later(0.08, loop.stop)
    guard(loop)
    loop.run_forever()
    assert seen == [0.01, 0.02, 0.03, 0.04, 0.05]


def test_timers_with_equal_deadlines_fire_in_insertion_order(loop):
    seen = []
    deadline = loop.time() + 0.01
    for i in range(20):
        loop.call_at(deadline, seen.append, i)
    loop.call_at(deadline + 0.01, loop.stop)
    guard(loop)
    loop.run_forever()
    assert seen == list(range(20))


def test_timer_does_not_fire_early(loop):
    fired = []
    started = time.monotonic()
    loop.call_later(0.1, lambda: fired.append(time.monotonic() - started))
    loop.call_later(0.15, loop.stop)
    guard(loop)
    loop.run_forever()
    assert len(fired) == 1
    assert fired[0] >= 0.095


def test_cancelled_timer_does_not_fire(loop):
    seen = []
    timer = loop.call_later(0.01, seen.append, "cancelled")
    loop.call_later(0.02, seen.append, "kept")
    timer.cancel()
    timer.cancel()  # twice is harmless
    loop.call_later(0.04, loop.stop)
    guard(loop)
    loop.run_forever()
    assert seen == ["kept"]
    assert timer.cancelled


def test_cancel_after_firing_is_a_noop(loop):
    seen = []
    timer = loop.call_later(0, seen.append, 1)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert seen == [1]
    before = loop._cancelled_timers
    timer.cancel()
    assert loop._cancelled_timers == before


def test_many_cancelled_timers_are_dropped_from_the_heap(loop):
    seen = []
    far = loop.time() + 3600
    timers = [loop.call_at(far + i, seen.append, i) for i in range(3000)]
    assert len(loop._timers) == 3000
    for timer in timers[:2900]:
        timer.cancel()
    # Lazy cancel still compacts once most of the heap is dead.
    assert len(loop._timers) < 3000
    live = [t for t in loop._timers if not t.cancelled]
    assert len(live) == 100
    assert loop._cancelled_timers == len(loop._timers) - len(live)
    # The heap still works: a new, earlier timer fires and the survivors are intact.
    loop.call_later(0.01, seen.append, "soon")
    loop.call_later(0.02, loop.stop)
    guard(loop)
    loop.run_forever()
    assert seen == ["soon"]
    assert sorted(t.seq for t in loop._timers if not t.cancelled) == \
        sorted(t.seq for t in timers[2900:])


def test_cancelled_timers_popped_by_the_loop_keep_the_count_right(loop):
    seen = []
    timers = [loop.call_later(0.001 * i, seen.append, i) for i in range(10)]
    for timer in timers[::2]:
        timer.cancel()
    assert loop._cancelled_timers == 5
    loop.call_later(0.05, loop.stop)
    guard(loop)
    loop.run_forever()
    assert seen == [1, 3, 5, 7, 9]
    assert loop._cancelled_timers == 0
    assert loop._timers == []


# -- fd handlers ----------------------------------------------------------------------------


def test_add_and_remove_handler_on_a_socketpair(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        received = []

        def on_read(fd, events):
            assert fd == a.fileno()
            assert events & READ
            received.append(a.recv(100))
            if b"".join(received) == b"hello":
                loop.stop()

        loop.add_handler(a.fileno(), on_read, READ)
        b.send(b"hel")
        loop.call_later(0.02, b.send, b"lo")
        guard(loop)
        loop.run_forever()
        assert b"".join(received) == b"hello"

        loop.remove_handler(a.fileno())
        loop.remove_handler(a.fileno())  # twice is harmless
        b.send(b"ignored")
        run_for(loop, 0.03)
        assert b"".join(received) == b"hello"
        assert a.recv(100) == b"ignored"
    finally:
        a.close()
        b.close()


def test_update_handler_switches_to_write_interest(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        events_seen = []

        def handler(fd, events):
            events_seen.append(events)
            if events & WRITE:
                loop.update_handler(fd, READ)
                loop.stop()

        loop.add_handler(a.fileno(), handler, READ)
        loop.update_handler(a.fileno(), WRITE)
        guard(loop)
        loop.run_forever()
        assert events_seen and events_seen[-1] & WRITE
        loop.remove_handler(a.fileno())
    finally:
        a.close()
        b.close()


def test_handler_sees_hangup_as_error_or_read(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        seen = []

        def handler(fd, events):
            seen.append(events)
            loop.remove_handler(fd)
            loop.stop()

        loop.add_handler(a.fileno(), handler, READ)
        b.close()
        guard(loop)
        loop.run_forever()
        assert seen and seen[0] & (READ | ERROR)
        assert a.recv(10) == b""
    finally:
        a.close()


# -- signals --------------------------------------------------------------------------------


def test_signal_handler_dispatches_on_the_loop(loop):
    previous = signal.getsignal(signal.SIGUSR1)
    received = []

    def on_signal(signum):
        received.append((signum, threading.get_ident()))
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, on_signal)
    try:
        loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        guard(loop)
        loop.run_forever()
        assert received == [(signal.SIGUSR1, threading.get_ident())]
    finally:
        loop.remove_signal_handlers()
    assert signal.getsignal(signal.SIGUSR1) == previous
    assert loop._signal_sock is None


def test_signal_arriving_while_loop_sleeps_in_poll(loop):
    received = []

    def on_signal(signum):
        received.append(signum)
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, on_signal)
    try:
        sender = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
        sender.start()
        guard(loop)
        started = time.monotonic()
        loop.run_forever()
        sender.join()
        assert received == [signal.SIGUSR1]
        assert time.monotonic() - started < 1.0
    finally:
        loop.remove_signal_handlers()


def test_remove_signal_handlers_restores_the_wakeup_fd(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda signum: None)
    ours = loop._signal_sock_w.fileno()
    current = signal.set_wakeup_fd(ours)  # read the current value, then put it back
    assert current == ours
    loop.remove_signal_handlers()
    assert signal.set_wakeup_fd(-1) == -1  # pytest's (the previous) value: none


def test_remove_signal_handlers_restores_a_previous_python_handler(loop):
    calls = []

    def original(signum, frame):
        calls.append(signum)

    saved = signal.signal(signal.SIGUSR1, original)
    try:
        loop.add_signal_handler(signal.SIGUSR1, lambda signum: None)
        loop.remove_signal_handlers()
        assert signal.getsignal(signal.SIGUSR1) is original
    finally:
        signal.signal(signal.SIGUSR1, saved)


# -- coroutines -----------------------------------------------------------------------------


def test_spawn_runs_a_coroutine_awaiting_futures_and_sleeps(loop):
    steps = []
    started = time.monotonic()

    async def worker():
        future = loop.create_future()
        loop.call_soon(future.set_result, 41)
        value = await future
        steps.append(value)
        value = await sleep(loop, 0.05, value + 1)
        steps.append(value)
        done = loop.create_future()
        done.set_result("already done")
        steps.append(await done)
        return "finished"

    task = loop.spawn(worker())
    assert not task.done()
    guard(loop)
    assert loop.run_until_complete(task) == "finished"
    assert steps == [41, 42, "already done"]
    assert time.monotonic() - started >= 0.045


def test_run_until_complete_accepts_a_coroutine(loop):
    async def add(a, b):
        await sleep(loop, 0.001)
        return a + b

    guard(loop)
    assert loop.run_until_complete(add(2, 3)) == 5


def test_exception_in_coroutine_ends_up_in_the_task_future(loop):
    async def broken():
        await sleep(loop, 0.001)
        raise KeyError("inside the coroutine")

    task = loop.spawn(broken())
    guard(loop)
    with pytest.raises(KeyError, match="inside the coroutine"):
        loop.run_until_complete(task)
    assert task.done()
    assert isinstance(task.exception(), KeyError)


def test_awaited_future_exception_is_raised_into_the_coroutine(loop):
    async def catcher():
        future = loop.create_future()
        loop.call_soon(future.set_exception, ValueError("from the future"))
        try:
            await future
        except ValueError as exc:
            return f"caught {exc}"
        return "not caught"

    guard(loop)
    assert loop.run_until_complete(catcher()) == "caught from the future"


def test_coroutine_yielding_a_non_future_fails_its_task(loop):
    class Bogus:
        def __await__(self):
            yield 42

    async def bad():
        await Bogus()

    task = loop.spawn(bad())
    guard(loop)
    with pytest.raises(TypeError):
        loop.run_until_complete(task)


def test_future_callbacks_run_on_the_loop_not_inline(loop):
    future = loop.create_future()
    seen = []
    future.add_done_callback(lambda f: seen.append(f.result()))
    future.set_result("value")
    assert seen == []  # not inline
    with pytest.raises(RuntimeError):
        future.set_result("again")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["value"]


def test_future_result_before_done_and_after_cancel(loop):
    future = loop.create_future()
    with pytest.raises(RuntimeError):
        future.result()
    assert future.cancel()
    assert future.cancelled() and future.done()
    assert not future.cancel()
    from wsgiloop.ioloop import CancelledError
    with pytest.raises(CancelledError):
        future.result()


# -- watchdog ---------------------------------------------------------------------------------


def test_watchdog_reports_a_blocked_loop_with_its_stack(caplog):
    loop = IOLoop(slow_callback_threshold=0.2)
    try:
        def a_very_slow_callback_for_the_watchdog():
            time.sleep(0.6)

        loop.call_soon(a_very_slow_callback_for_the_watchdog)
        loop.call_soon(loop.stop)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            loop.run_forever()
            time.sleep(0.05)
    finally:
        loop.close()
    warnings = [r for r in caplog.records
                if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # reported once per blocked pass
    message = warnings[0].getMessage()
    assert "blocked" in message
    assert "a_very_slow_callback_for_the_watchdog" in message
    assert "time.sleep(0.6)" in message


def test_watchdog_quiet_for_fast_callbacks(caplog):
    loop = IOLoop(slow_callback_threshold=0.2)
    try:
        for _ in range(5):
            loop.call_soon(time.sleep, 0.01)
        loop.call_later(0.3, loop.stop)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            loop.run_forever()
    finally:
        loop.close()
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_watchdog_thread_stops_with_the_loop():
    loop = IOLoop(slow_callback_threshold=0.05)
    try:
        loop.call_later(0.02, loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name == "wsgiloop-watchdog"]:
            break
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name == "wsgiloop-watchdog"]


# -- fork guard -------------------------------------------------------------------------------


def test_run_forever_in_a_forked_child_raises(loop):
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 3
        try:
            try:
                loop.run_forever()
                code = 1
            except RuntimeError as exc:
                code = 0 if "another process" in str(exc) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0
    # The parent's loop is unaffected.
    loop.call_soon(loop.stop)
    loop.run_forever()


# -- the selectors fallback -------------------------------------------------------------------


def swap_to_selector_poller(loop: IOLoop) -> None:
    loop._poller.close()
    loop._poller = _SelectorPoller()
    for fd in loop._handlers:
        loop._poller.register(fd, READ | ERROR)


def test_selector_poller_directly():
    poller = _SelectorPoller()
    a, b = socket.socketpair()
    try:
        poller.register(a.fileno(), READ | ERROR)
        assert poller.poll(0) == []
        b.send(b"x")
        assert poller.poll(1.0) == [(a.fileno(), READ)]
        poller.modify(a.fileno(), READ | WRITE | ERROR)
        ready = dict(poller.poll(1.0))
        assert ready[a.fileno()] == READ | WRITE
        poller.modify(a.fileno(), WRITE)
        assert poller.poll(1.0) == [(a.fileno(), WRITE)]
        poller.unregister(a.fileno())
        assert poller.poll(0) == []
    finally:
        poller.close()
        a.close()
        b.close()


def test_loop_runs_a_read_handler_on_the_selector_poller(loop):
    swap_to_selector_poller(loop)
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        received = []

        def on_read(fd, events):
            received.append(a.recv(100))
            loop.stop()

        loop.add_handler(a.fileno(), on_read, READ)
        loop.call_later(0.02, b.send, b"via selectors")
        guard(loop)
        loop.run_forever()
        assert received == [b"via selectors"]
        # call_soon_threadsafe still wakes it (the waker was re-registered).
        woke = []
        waker = threading.Timer(0.05, loop.call_soon_threadsafe,
                                (lambda: (woke.append(1), loop.stop()),))
        waker.start()
        loop.run_forever()
        waker.join()
        assert woke == [1]
        loop.remove_handler(a.fileno())
    finally:
        a.close()
        b.close()


def test_selector_poller_accepts_an_error_only_interest(monkeypatch):
    """epoll allows ``modify(fd, ERROR)`` (no read, no write); the facade must too.

    IOStream.pause_reading with nothing to write does exactly that.  Linux's
    EpollSelector tolerates an empty mask on modify, but the selectors used where the
    fallback matters (kqueue, select) reject it, so simulate one of them.
    """
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    poller = _SelectorPoller()
    a, b = socket.socketpair()
    try:
        poller.register(a.fileno(), READ | ERROR)
        poller.modify(a.fileno(), ERROR)  # reading paused, nothing to write
        b.send(b"x")
        assert poller.poll(0.05) == []
        poller.modify(a.fileno(), READ | ERROR)
        assert poller.poll(1.0) == [(a.fileno(), READ)]
    finally:
        poller.close()
        a.close()
        b.close()


def test_compaction_inside_an_fd_handler_keeps_the_cancel_count_right(loop):
    """The count of dead timers in the heap must match the heap after any pass.

    An fd handler that cancels enough timers triggers a compaction, which builds a new
    heap list while the running pass still pops due timers from the list it started with.
    """
    far = [loop.call_later(3600 + i, lambda: None) for i in range(1000)]
    fired = []
    for i in range(5):
        loop.call_later(0, fired.append, i)
    for timer in [loop.call_later(0, fired.append, "cancelled") for _ in range(3)]:
        timer.cancel()
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        def handler(fd, events):
            a.recv(10)
            for timer in far[:600]:
                timer.cancel()
            loop.remove_handler(fd)

        loop.add_handler(a.fileno(), handler, READ)
        b.send(b"x")
        time.sleep(0.01)  # the zero-delay timers are due on the same pass as the handler
        guard(loop)
        run_for(loop, 0.03)
    finally:
        a.close()
        b.close()
    assert fired == [0, 1, 2, 3, 4]
    dead = sum(1 for t in loop._timers if t.cancelled)
    assert loop._cancelled_timers == dead
    assert len(loop._timers) - dead == 400
