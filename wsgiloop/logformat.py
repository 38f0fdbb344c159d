"""The formats of wsgiloop's logs and the small pieces the lower layers share with the
log set-up (:mod:`wsgiloop.logsetup`): the error log's text format, ``--log-format
json``'s :class:`JSONFormatter`, the syslog address syntax, and ``wsgi.errors`` as
error-log records.  Reads no settings."""

from __future__ import annotations

import datetime
import json
import logging
import socket
from typing import Any

ERROR_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
ERROR_LOG_DATEFMT = "%Y-%m-%d %H:%M:%S %z"

error_log = logging.getLogger("wsgiloop.error")
access_log = logging.getLogger("wsgiloop.access")

#: The attribute that marks an access record of ``--log-format json`` (its fields).
ACCESS_FIELDS_ATTR = "wsgiloop_access"


def iso_time(timestamp: float) -> str:
    """``2026-12-07T00:01:02.345+01:00``: local time with its offset, to the millisecond."""
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(
        timespec="milliseconds")


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line.

    An error-log record gives ``time``, ``level``, ``logger``, ``message``, ``pid`` and
    ``exc_info`` (the formatted traceback, or null).  An access record of
    ``--log-format json`` is already such an object: its message is written as it is.
    ``prefix`` goes before the object (a syslog tag).  Usable in a log config as
    ``wsgiloop.logsetup.JSONFormatter``; the format and style a config may pass are
    ignored (the fields are fixed), ``datefmt`` too (times are ISO 8601).
    """

    def __init__(self, fmt: str | None = None, datefmt: str | None = None,
                 style: str = "%", validate: bool = True, *, prefix: str = "",
                 **kwargs: Any) -> None:
        super().__init__(None, datefmt, "%", validate, **kwargs)
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        if hasattr(record, ACCESS_FIELDS_ATTR):
            return self.prefix + record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)  # as Formatter caches
        exc_text = record.exc_text or None
        if record.stack_info:
            exc_text = (exc_text + "\n" if exc_text else "") + \
                self.formatStack(record.stack_info)
        return self.prefix + json.dumps({
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "exc_info": exc_text,
        }, ensure_ascii=False, default=str)


def parse_syslog_address(text: str) -> tuple[int | None, str | tuple[str, int]]:
    """gunicorn's ``--log-syslog-to``: ``udp://HOST[:PORT]``, ``tcp://HOST[:PORT]`` (port
    514 by default; ``[::1]`` for IPv6) or ``unix://PATH[#dgram|#stream]`` (without a
    type, datagram then stream is tried).  Returns ``(socket type, address)`` as
    :class:`logging.handlers.SysLogHandler` takes them; ValueError when malformed."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError("expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH")
    if scheme == "unix":
        path, _, kind = rest.partition("#")
        if not path:
            raise ValueError("unix:// needs a socket path, as in unix:///dev/log")
        if kind not in ("", "dgram", "stream"):
            raise ValueError(f"unknown unix socket type {kind!r} (dgram or stream)")
        socktype = {"": None, "dgram": socket.SOCK_DGRAM, "stream": socket.SOCK_STREAM}
        return socktype[kind], path
    if scheme not in ("udp", "tcp"):
        raise ValueError(f"unknown scheme {scheme!r}: expected udp, tcp or unix")
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ValueError("expected [IPv6]:PORT")
        port_text = port_text[1:]
    else:
        host, _, port_text = rest.partition(":")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"{port_text!r} is not a port number")
    socktype = socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM
    return socktype, (host or "localhost", int(port_text or 514))


class ErrorLogRecords:
    """``wsgi.errors`` with ``--log-format json``: each write becomes one error-log record
    (level ERROR, its trailing newline dropped), so that the error log stays one JSON
    object per line; a write of only whitespace is dropped."""

    def write(self, text: str) -> None:
        text = text.rstrip("\n")
        if text.strip():
            error_log.error("%s", text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


def access_logging_on() -> bool:
    """Whether an access record would reach a handler (decided once per worker)."""
    return (not access_log.disabled and access_log.isEnabledFor(logging.INFO)
            and access_log.hasHandlers())
