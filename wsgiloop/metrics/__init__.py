"""Metrics and health: gunicorn's statsd metrics (``--statsd-host``), a Prometheus
endpoint and health checks on an address of their own (``--metrics-bind``).

Workers count into a block of shared memory each (:mod:`.block`, written by
:mod:`.recorder` from the per-response callback); the master adds the blocks up,
keeps what exited workers counted, and answers ``/metrics``, ``/livez`` and ``/readyz``
from its own loop (:mod:`.master`, :mod:`.endpoint`).  statsd lines are sent by the
process where they happen (:mod:`.statsd`).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from ..netutil import BindError, bind_sockets, close_sockets, inherited_sockets, parse_bind
from .block import MetricsBlock
from .master import HANDOVER_VAR, RESTART_REASONS, MasterMetrics
from .recorder import Sampler, response_recorder
from .statsd import StatsdClient, parse_statsd_address

__all__ = ["RESTART_REASONS", "MasterMetrics", "MetricsBlock", "Sampler", "StatsdClient",
           "master_metrics", "parse_statsd_address", "response_recorder"]

#: The metrics address's listen() backlog: scrapers and probes are few.
_BACKLOG = 64


def master_metrics(settings: Any, environ: MutableMapping[str, str] = os.environ
                   ) -> MasterMetrics | None:
    """The master's metrics for the settings (None when neither ``--metrics-bind`` nor
    ``--statsd-host`` is given), with the metrics address bound -- or taken over from
    the master that started this one (USR2).  Raises :class:`BindError` (one line) when
    the address is one of ``--bind``'s or cannot be bound, or when the statsd host
    cannot be resolved."""
    if not settings.metrics_bind and not settings.statsd_host:
        return None
    listeners = []
    if settings.metrics_bind:
        handed = environ.pop(HANDOVER_VAR, "")
        if handed:
            listeners = inherited_sockets([int(fd) for fd in handed.split()])
        else:
            spec = parse_bind(settings.metrics_bind)
            for address in settings.bind if not settings.fd else []:
                if _same_address(spec, parse_bind(address)):
                    raise BindError(f"--metrics-bind {settings.metrics_bind}: this is a "
                                    "--bind address; give metrics an address of their own")
            listeners = bind_sockets([spec], _BACKLOG)
    statsd = None
    if settings.statsd_host:
        try:
            statsd = StatsdClient(settings.statsd_host, settings.statsd_prefix,
                                  settings.dogstatsd_tags)
        except OSError as e:
            close_sockets(listeners)
            raise BindError(f"--statsd-host {settings.statsd_host}: cannot resolve the host "
                            f"({e.strerror or e})") from None
    return MasterMetrics(listeners, statsd)


def _same_address(a: Any, b: Any) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "unix":
        return os.path.abspath(a.path) == os.path.abspath(b.path)
    if a.kind == "fd":
        return a.fd == b.fd
    return a.port == b.port and a.port != 0 and (
        a.host == b.host or a.host is None or b.host is None)
