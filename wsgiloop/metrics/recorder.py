"""The worker's side: count each response, and sample the connection gauges and the
loop's lag now and then.

:func:`response_recorder` makes the ``on_response(request, status, body_bytes)``
callback the connections call after each response (it is only made when metrics are
on, so a server without them pays nothing).  What it costs per response: a clock read,
a bisect and a few stores into the shared block, plus three lines appended to the
statsd buffer with ``--statsd-host``.

Bytes counted are bodies: the request body as received (after de-chunking) and the
response body as produced by the application (before chunked framing) -- what the
access log's ``%(b)s`` shows; heads are not counted.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from .block import (
    ACCEPTED,
    ACTIVE,
    BUCKETS,
    BYTES_IN,
    BYTES_OUT,
    DURATION_BUCKETS,
    DURATION_SUM,
    LOOP_LAG,
    REQUESTS,
    MetricsBlock,
)
from .statsd import StatsdClient

#: How often a worker samples its gauges and sends its statsd lines.
SAMPLE_SECONDS = 0.5


def response_recorder(block: MetricsBlock | None, statsd: StatsdClient | None
                      ) -> Callable[[Any, int, int], None] | None:
    """The per-response callback for a worker's ``block`` and ``statsd`` client (either
    may be None); None when both are."""
    if block is None and statsd is None:
        return None
    clock = time.time  # the connection stamps request.start_time with time.time()
    bounds = DURATION_BUCKETS
    if block is None:
        assert statsd is not None
        to_statsd = statsd.response

        def record_statsd(request: Any, status: int, length: int) -> None:
            to_statsd(status, clock() - request.start_time)
        return record_statsd
    ints, floats = block.ints, block.floats
    to_statsd = statsd.response if statsd is not None else None

    def record(request: Any, status: int, length: int) -> None:
        seconds = clock() - request.start_time
        cls = status // 100 - 1
        ints[REQUESTS + (cls if 0 <= cls < 5 else 4)] += 1
        ints[BUCKETS + bisect_left(bounds, seconds)] += 1
        floats[DURATION_SUM] += seconds
        ints[BYTES_IN] += request.body_length
        ints[BYTES_OUT] += length
        if to_statsd is not None:
            to_statsd(status, seconds)

    return record


class Sampler:
    """Every :data:`SAMPLE_SECONDS` on the worker's loop: the open and accepted
    connections of ``server`` into the block, how late the timer ran (the loop's lag),
    and the statsd lines out."""

    def __init__(self, loop: Any, server: Any, block: MetricsBlock | None,
                 statsd: StatsdClient | None) -> None:
        self.loop = loop
        self.server = server
        self.block = block
        self.statsd = statsd
        self._due = 0.0
        self._timer: Any = None

    def start(self) -> None:
        self._due = self.loop.time()
        self._tick()

    def _tick(self) -> None:
        now = self.loop.time()
        self.sample(max(0.0, now - self._due))
        self._due = now + SAMPLE_SECONDS
        self._timer = self.loop.call_later(SAMPLE_SECONDS, self._tick)

    def sample(self, lag: float | None = None) -> None:
        """Write the gauges now (also at the worker's end, for its last counts)."""
        block = self.block
        if block is not None:
            block.ints[ACCEPTED] = self.server.accepted
            block.ints[ACTIVE] = len(self.server.connections)
            if lag is not None:
                block.floats[LOOP_LAG] = lag
        if self.statsd is not None:
            self.statsd.flush()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sample()
