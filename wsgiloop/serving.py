"""Runs one application in this process: settings in, an event loop serving until a signal.

TERM and INT stop gracefully: no new connections, idle keep-alive connections closed,
requests in flight finished (up to ``graceful_timeout``).  A second INT stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from .accesslog import AccessLogger
from .http import HTTPLimits
from .ioloop import IOLoop
from .netutil import socket_url
from .server import ConnectionParameters, HTTPServer
from .wsgi import WSGIGateway

log = logging.getLogger("wsgiloop.error")


def connection_parameters(settings: Any) -> ConnectionParameters:
    """The connection layer's parameters from the settings table."""
    limits = HTTPLimits(
        max_request_line=settings.limit_request_line,
        max_header_count=settings.limit_request_fields,
        max_header_field_size=settings.limit_request_field_size,
        max_head_size=settings.limit_request_head,
        max_body_size=settings.max_body_size,
    )
    server_header = settings.server_header.encode("latin-1") if settings.server_header else None
    return ConnectionParameters(
        limits=limits,
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        body_timeout=settings.body_timeout,
        spool_threshold=settings.spool_threshold,
        server_header=server_header,
    )


def _error_stream() -> Any:
    for handler in logging.getLogger("wsgiloop.error").handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            return stream
    return sys.stderr


def serve(app: Callable[..., Any], settings: Any, sockets: list[socket.socket]) -> int:
    """Serve ``app`` on ``sockets`` until TERM or INT; returns the exit code."""
    loop = IOLoop(slow_callback_threshold=settings.slow_callback_threshold or None)
    gateway = WSGIGateway(app, root_path=settings.root_path, multithread=True,
                          multiprocess=False, errors=_error_stream())
    access = AccessLogger(settings.access_log_format) if settings.access_log else None
    server = HTTPServer(loop, sockets, connection_parameters(settings), gateway,
                        access_log=access)
    graceful_timeout = getattr(settings, "graceful_timeout", 30.0)
    stopping = {"deadline": None}

    def check_drained() -> None:
        busy = server.close_idle()
        if busy == 0 or loop.time() >= stopping["deadline"]:
            if busy:
                log.warning("graceful timeout: closing %d busy connection(s)", busy)
            loop.stop()
        else:
            loop.call_later(0.05, check_drained)

    def on_stop_signal(signum: int) -> None:
        if stopping["deadline"] is not None:
            if signum == signal.SIGINT:
                loop.stop()
            return
        log.info("received %s: stopping gracefully", signal.Signals(signum).name)
        stopping["deadline"] = loop.time() + graceful_timeout
        server.stop_accepting()
        check_drained()

    loop.add_signal_handler(signal.SIGTERM, on_stop_signal)
    loop.add_signal_handler(signal.SIGINT, on_stop_signal)
    server.start()
    for sock in sockets:
        log.info("Listening at: %s (%d)", socket_url(sock), os.getpid())
    try:
        loop.run_forever()
    finally:
        server.stop_accepting()
        server.close_all()
        loop.close()
    log.info("stopped")
    return 0
