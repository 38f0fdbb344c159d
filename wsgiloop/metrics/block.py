"""What one worker counts, in a block of shared memory the master reads.

The master makes a :class:`MetricsBlock` before forking a worker (anonymous shared
memory, like the worker's status page); the worker adds to it, the master only reads it
(for ``/metrics``) and, once the worker has exited, folds what it counted into the
totals of the workers gone (:class:`Totals`), so that counters never go down when a
worker is replaced.

Slots are aligned 8-byte integers and floats written through a ``memoryview``: one
store each, no lock, no system call.  A reader may see one request's counts half
applied (its status class counted, its duration not yet); the next scrape is whole.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable

#: Upper bounds (seconds) of the request duration histogram's buckets (+Inf follows).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0, 30.0, 60.0)

#: The status classes requests are counted by (index = status // 100 - 1).
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

# Integer slots.  Counters first, then gauges the worker samples now and then.
REQUESTS = 0  # .. REQUESTS + 4: by status class
BYTES_IN = 5  # request body bytes
BYTES_OUT = 6  # response body bytes
ACCEPTED = 7  # connections accepted (sampled from the HTTP server)
BUCKETS = 8  # .. BUCKETS + len(DURATION_BUCKETS): per bucket, not cumulative
ACTIVE = BUCKETS + len(DURATION_BUCKETS) + 1  # gauge: connections open now
_INTS = ACTIVE + 1
#: The integer slots that are counters (summed over the workers gone too).
COUNTERS = range(ACTIVE)

# Float slots.
DURATION_SUM = 0
LOOP_LAG = 1  # gauge: how late the worker's last sampling timer ran, in seconds
_FLOATS = 2


class MetricsBlock:
    """One worker's counters in anonymous shared memory (make it before the fork)."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, 8 * (_INTS + _FLOATS))
        whole = memoryview(self._map)
        #: The integer slots (``ints[REQUESTS + 1] += 1``).
        self.ints = whole[:8 * _INTS].cast("q")
        #: The float slots (``floats[DURATION_SUM] += seconds``).
        self.floats = whole[8 * _INTS:].cast("d")
        whole.release()

    def close(self) -> None:
        self.ints.release()
        self.floats.release()
        self._map.close()


class Totals:
    """Counters summed over blocks: the workers gone, plus those running at a scrape."""

    def __init__(self) -> None:
        self.ints = [0] * _INTS
        self.floats = [0.0] * _FLOATS

    def add(self, block: MetricsBlock | Totals) -> None:
        """Add ``block``'s counters (not its gauges)."""
        ints, floats = self.ints, self.floats
        source = block.ints
        for slot in COUNTERS:
            ints[slot] += source[slot]
        floats[DURATION_SUM] += block.floats[DURATION_SUM]

    @classmethod
    def of(cls, blocks: Iterable[MetricsBlock | Totals]) -> Totals:
        total = cls()
        for block in blocks:
            total.add(block)
        return total
