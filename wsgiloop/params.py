"""Every limit and timeout one HTTP connection observes, in one immutable object that
whoever serves (``serving``, the tests) builds and hands to each connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .http import HTTPLimits, RequestParser


@dataclass(frozen=True)
class ConnectionParameters:
    """Limits and timeouts for one HTTP connection, passed in by whoever serves.

    * ``limits``: request size limits (see :class:`~wsgiloop.http.HTTPLimits`);
    * ``header_timeout``: seconds for a whole request head to arrive (also for the first
      request on a new connection);
    * ``keepalive_timeout``: seconds an idle connection waits for its next request;
    * ``body_timeout``: seconds a request body may go without progress;
    * ``body_min_rate``: least average bytes/s of a body once ``body_timeout`` has
      passed since it began (0: no check);
    * ``send_timeout``: seconds a response may go without the client taking any of it;
    * ``spool_threshold``: body bytes held in memory before spooling to a temp file;
    * ``spool_dir``: the directory of spool files (None: the system temp dir);
    * ``server_header``: the ``Server`` field value, or None for none;
    * ``high_water``/``low_water``: write-buffer marks for back-pressure;
    * ``linger``: seconds to keep reading after an error reply before closing;
    * ``proxy_protocol``: expect a PROXY protocol (v1 or v2) header first on connections
      from ``proxy_protocol_peers``, or from ``trusted_proxies`` when that is None (each a
      :class:`~wsgiloop.http.proxies.TrustedProxies`); the client address it gives
      replaces the peer's.
    * ``parser_class``: the request parser, called with ``limits`` (see
      :func:`~wsgiloop.http.parser_class`).
    * ``flat_path``: serve a clean request that arrives whole through the connection's
      flat path (see :class:`~wsgiloop.server.HTTPConnection`); False (tests only)
      sends every request through the layers' general code.
    """

    limits: HTTPLimits = field(default_factory=HTTPLimits)
    header_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    body_timeout: float = 30.0
    body_min_rate: int = 512
    send_timeout: float = 30.0
    spool_threshold: int = 256 * 1024
    spool_dir: str | None = None
    server_header: bytes | None = b"wsgiloop"
    high_water: int = 256 * 1024
    low_water: int = 64 * 1024
    linger: float = 2.0
    proxy_protocol: bool = False
    trusted_proxies: Any = None
    proxy_protocol_peers: Any = None
    parser_class: Callable[[HTTPLimits], RequestParser] = RequestParser
    flat_path: bool = True
