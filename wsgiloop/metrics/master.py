"""The master's side: a block per worker, the totals of the workers gone, the reasons
workers were replaced, the statsd client, and the endpoint on ``--metrics-bind``.

The arbiter calls, at the points of a worker's life: :meth:`MasterMetrics.new_block`
before a fork, :meth:`MasterMetrics.after_fork` in the new worker,
:meth:`MasterMetrics.worker_exited` once it is reaped, and :meth:`MasterMetrics.tick`
once a pass; its ``select`` waits on :meth:`MasterMetrics.fds` too and hands what is
ready to :meth:`MasterMetrics.handle`.  It exposes, for the routes:
``workers`` (pid -> worker, each with ``age``, ``pid``, ``ready`` and ``metrics``, its
block) and ``serving`` (true while at least one worker serves and no stop has begun).

Routes: ``/metrics`` (Prometheus text format 0.0.4), ``/livez`` (200 while the master
runs), ``/readyz`` (200 while ``serving``, else 503).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from typing import Any

from ..netutil import close_sockets
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
    STATUS_CLASSES,
    MetricsBlock,
    Totals,
)
from .endpoint import Answer, Endpoint
from .statsd import LogCounter, StatsdClient

#: Why a worker was replaced, as ``wsgiloop_worker_restarts_total{reason=...}`` says:
#: it exited by itself (``exit``), died from a signal the master did not send (``crash``:
#: a segfault, the OOM killer, a kill -9), was killed for missing heartbeats
#: (``timeout``), ended a request past --request-timeout (``request-timeout``), failed to
#: load the application (``boot-error``), retired at --max-requests or --max-rss, or was
#: replaced by a reload (HUP, --reload).
RESTART_REASONS = ("exit", "crash", "timeout", "request-timeout", "boot-error",
                   "max-requests", "max-rss", "reload")
#: Set by the master in the environment of a new master it starts (USR2): the metrics
#: listening sockets it hands over.
HANDOVER_VAR = "WSGILOOP_METRICS_FD"
_TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
_PLAIN = "text/plain; charset=utf-8"

log = logging.getLogger("wsgiloop.error")


class MasterMetrics:
    """Metrics and health for one master: ``listeners`` for the endpoint (may be empty),
    ``statsd`` for gunicorn's statsd metrics (may be None)."""

    def __init__(self, listeners: list[socket.socket], statsd: StatsdClient | None) -> None:
        self.listeners = listeners
        self.statsd = statsd
        self.endpoint = Endpoint(listeners, {
            "/metrics": self._metrics, "/livez": self._livez, "/readyz": self._readyz,
        }) if listeners else None
        self.gone = Totals()  # what workers that have exited counted
        self.restarts: Counter[str] = Counter()
        self.arbiter: Any = None
        self._log_counter: LogCounter | None = None
        self._workers_sent = -1
        if statsd is not None:
            self._log_counter = LogCounter(statsd)
            self._keep_log_counter()

    def _keep_log_counter(self) -> None:
        """(Re)attach the log counter to the error log: a log config applied again on HUP
        (``--log-config-dict`` naming ``wsgiloop.error``) replaces that logger's handlers."""
        logger = logging.getLogger("wsgiloop.error")
        if self._log_counter is not None and self._log_counter not in logger.handlers:
            logger.addHandler(self._log_counter)

    @property
    def prometheus(self) -> bool:
        return self.endpoint is not None

    def attach(self, arbiter: Any) -> None:
        """The arbiter whose ``workers`` and ``serving`` the routes report."""
        self.arbiter = arbiter

    # -- the arbiter's calls ---------------------------------------------------------------

    def new_block(self) -> MetricsBlock | None:
        """A block for the next worker (None without the Prometheus endpoint).  Also sends
        what statsd lines wait, so that the new worker does not inherit them."""
        if self.statsd is not None:
            self._keep_log_counter()  # the new worker counts its log lines too
            self.statsd.flush()
        return MetricsBlock() if self.endpoint is not None else None

    def after_fork(self) -> None:
        """In a new worker: let go of the master's sockets and queued statsd lines."""
        if self.endpoint is not None:
            self.endpoint.close_in_child()
        if self.statsd is not None:
            self.statsd.after_fork()

    def worker_exited(self, worker: Any, reason: str | None) -> None:
        """Keep what ``worker`` counted; count its replacement under ``reason`` (None: it
        is not replaced -- the master is stopping, or fewer workers are wanted)."""
        if reason is not None:
            self.restarts[reason] += 1
        block = worker.metrics
        if block is not None:
            self.gone.add(block)
            worker.metrics = None
            block.close()

    def tick(self) -> None:
        """Once a master's pass: the ``gunicorn.workers`` gauge when it changed, and the
        statsd lines out."""
        if self.statsd is None or self.arbiter is None:
            return
        self._keep_log_counter()
        count = len(self.arbiter.workers)
        if count != self._workers_sent:
            self._workers_sent = count
            self.statsd.gauge("gunicorn.workers", count)
        self.statsd.flush()

    def fds(self) -> tuple[list[int], list[int]]:
        return self.endpoint.fds() if self.endpoint is not None else ([], [])

    def handle(self, readable: list[int], writable: list[int]) -> None:
        if self.endpoint is not None:
            self.endpoint.handle(readable, writable)

    def handover_env(self) -> dict[str, str]:
        """In the child that becomes a new master (USR2): the listening sockets stay open
        across exec, named in the environment, so that the new master serves this address
        too instead of failing to bind it."""
        for sock in self.listeners:
            os.set_inheritable(sock.fileno(), True)
        if not self.listeners:
            return {}
        return {HANDOVER_VAR: " ".join(str(s.fileno()) for s in self.listeners)}

    def close(self, handed_over: bool = False) -> None:
        """Stop serving the metrics address (its unix socket file is removed, unless a
        new master took it over) and send the last statsd lines."""
        if self.endpoint is not None:
            self.endpoint.close_clients()
            if handed_over:
                for sock in self.listeners:
                    sock.close()
            else:
                close_sockets(self.listeners)
        if self.statsd is not None:
            self.statsd.close()
        if self._log_counter is not None:
            logging.getLogger("wsgiloop.error").removeHandler(self._log_counter)

    # -- routes ----------------------------------------------------------------------------

    def _livez(self) -> Answer:
        return 200, _PLAIN, b"ok\n"

    def _readyz(self) -> Answer:
        if self.arbiter is not None and self.arbiter.serving:
            return 200, _PLAIN, b"ready\n"
        why = "stopping" if self.arbiter is not None and self.arbiter.stopping else \
            "no worker serves yet"
        return 503, _PLAIN, f"not ready: {why}\n".encode()

    def _metrics(self) -> Answer:
        workers = sorted(self.arbiter.workers.values() if self.arbiter else [],
                         key=lambda w: w.age)
        return 200, _TEXT_FORMAT, render(self.gone, workers, self.restarts,
                                         self.arbiter is not None and
                                         self.arbiter.serving).encode()


def render(gone: Totals, workers: list[Any], restarts: Counter[str], ready: bool) -> str:
    """The Prometheus text exposition of the totals and the running ``workers``."""
    blocks = [w.metrics for w in workers if w.metrics is not None]
    total = Totals.of([gone, *blocks])
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    family("wsgiloop_requests_total", "counter", "Responses sent, by status class.")
    for i, cls in enumerate(STATUS_CLASSES):
        out.append(f'wsgiloop_requests_total{{status_class="{cls}"}} {total.ints[REQUESTS + i]}')
    family("wsgiloop_request_duration_seconds", "histogram",
           "Time from a request's head received to its response's last byte queued.")
    cumulative = 0
    for i, bound in enumerate(DURATION_BUCKETS):
        cumulative += total.ints[BUCKETS + i]
        out.append(f'wsgiloop_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
    cumulative += total.ints[BUCKETS + len(DURATION_BUCKETS)]
    out.append(f'wsgiloop_request_duration_seconds_bucket{{le="+Inf"}} {cumulative}')
    out.append(f"wsgiloop_request_duration_seconds_sum {total.floats[DURATION_SUM]!r}")
    out.append(f"wsgiloop_request_duration_seconds_count {cumulative}")
    family("wsgiloop_connections_accepted_total", "counter", "Client connections accepted.")
    out.append(f"wsgiloop_connections_accepted_total {total.ints[ACCEPTED]}")
    family("wsgiloop_connections_active", "gauge", "Client connections open now.")
    out.append(f"wsgiloop_connections_active {sum(b.ints[ACTIVE] for b in blocks)}")
    family("wsgiloop_request_body_bytes_total", "counter",
           "Request body bytes received (heads and chunked framing not counted).")
    out.append(f"wsgiloop_request_body_bytes_total {total.ints[BYTES_IN]}")
    family("wsgiloop_response_body_bytes_total", "counter",
           "Response body bytes sent (heads and chunked framing not counted).")
    out.append(f"wsgiloop_response_body_bytes_total {total.ints[BYTES_OUT]}")
    family("wsgiloop_worker_restarts_total", "counter", "Workers replaced, by reason.")
    for reason in RESTART_REASONS:
        out.append(f'wsgiloop_worker_restarts_total{{reason="{reason}"}} {restarts[reason]}')
    family("wsgiloop_workers", "gauge", "Worker processes running.")
    out.append(f"wsgiloop_workers {len(workers)}")
    family("wsgiloop_ready", "gauge", "1 while /readyz answers 200.")
    out.append(f"wsgiloop_ready {int(ready)}")
    family("wsgiloop_worker_requests_total", "counter", "Responses sent by each worker.")
    for w in workers:
        if w.metrics is not None:
            count = sum(w.metrics.ints[REQUESTS + i] for i in range(len(STATUS_CLASSES)))
            out.append(f'wsgiloop_worker_requests_total{{worker="{w.age}",pid="{w.pid}"}} '
                       f"{count}")
    family("wsgiloop_worker_resident_memory_bytes", "gauge", "Each worker's resident memory.")
    for w in workers:
        rss = _resident_bytes(w.pid)
        if rss is not None:
            out.append(f'wsgiloop_worker_resident_memory_bytes{{worker="{w.age}",'
                       f'pid="{w.pid}"}} {rss}')
    family("wsgiloop_worker_loop_lag_seconds", "gauge",
           "How late each worker's event loop last ran a timer (sampled every 0.5 s).")
    for w in workers:
        if w.metrics is not None:
            out.append(f'wsgiloop_worker_loop_lag_seconds{{worker="{w.age}",pid="{w.pid}"}} '
                       f"{w.metrics.floats[LOOP_LAG]!r}")
    return "\n".join(out) + "\n"


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None  # gone, or no /proc
