"""Access log lines in gunicorn's atom syntax; the default is Apache's combined format.

Atoms, with gunicorn's meanings: ``h`` remote address, ``l`` ``-``, ``u`` user (``-``),
``t`` time in brackets, ``r`` request line, ``m`` method, ``U`` path (percent-decoded, as
in PATH_INFO), ``q`` query, ``H`` protocol, ``s`` status, ``b`` and ``B`` body bytes,
``f`` referer, ``a`` user agent, ``T`` seconds, ``M`` milliseconds, ``D`` microseconds,
``L`` seconds with six decimals, ``p`` pid, ``{name}i`` a request header, ``{name}o`` a
response header, and ``{key}e`` a WSGI environ value (``-`` for native handlers, which
have no environ).

``--log-format json`` replaces the line with one JSON object (:class:`JSONAccessLogger`;
its fields are :data:`JSON_FIELDS`).  :func:`make_access_logger` picks the one the
settings ask for, and none when the access log goes nowhere, so that a worker without
an access log pays nothing per response.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from .logformat import ACCESS_FIELDS_ATTR, access_logging_on, iso_time

COMBINED = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

access_log = logging.getLogger("wsgiloop.access")


class _Atoms(dict):
    """Computes atoms on lookup, so a format pays only for the atoms it uses."""

    def __init__(self, request: Any, status: int, length: int) -> None:
        super().__init__()
        self.request = request
        self.status = status
        self.length = length

    def __missing__(self, key: str) -> str:
        request = self.request
        head = request.head
        if key == "h":
            environ = request.environ
            if environ is not None:  # REMOTE_ADDR, as trusted proxy headers set it
                return environ.get("REMOTE_ADDR") or "-"
            peer = request.peer
            return peer[0] if isinstance(peer, tuple) else "-"
        if key in ("l", "u"):
            return "-"
        if key == "t":
            return time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(request.start_time))
        if key == "r":
            return f"{head.method} {head.target} {head.version}"
        if key == "m":
            return head.method
        if key == "U":
            return _printable(unquote_to_bytes(head.path).decode("latin-1"))
        if key == "q":
            return head.query
        if key == "H":
            return head.version
        if key == "s":
            return str(self.status)
        if key == "b" or key == "B":  # "0" for an empty body from both, as in gunicorn
            return str(self.length)
        if key == "f":
            return head.get("referer", "-")
        if key == "a":
            return head.get("user-agent", "-")
        elapsed = time.time() - request.start_time
        if key == "T":
            return str(int(elapsed))
        if key == "M":
            return str(int(elapsed * 1000))
        if key == "D":
            return str(int(elapsed * 1_000_000))
        if key == "L":
            return f"{elapsed:.6f}"
        if key == "p":
            return f"<{os.getpid()}>"
        if key.startswith("{") and len(key) > 3 and key[-2] == "}":
            name, kind = key[1:-2], key[-1]
            if kind == "i":
                return head.get(name, "-")
            if kind == "o":
                return _field(request.response_headers or (), name)
            if kind == "e":
                return _environ_value(request.environ, name)
        return "-"


def _field(headers: Any, name: str) -> str:
    """The last ``name`` field of a response (case-insensitive), or ``-``."""
    lname = name.lower()
    found = "-"
    for field_name, value in headers:
        if field_name.lower() == lname:
            found = value
    return found


def _environ_value(environ: dict[str, Any] | None, key: str) -> str:
    """An environ value by key, matched case-insensitively as gunicorn does."""
    if not environ:
        return "-"
    value = environ.get(key)
    if value is None:
        lkey = key.lower()
        value = next((v for k, v in environ.items() if k.lower() == lkey), None)
    return "-" if value is None else _printable(str(value))


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x0d``): a decoded path must not be
    able to start a forged line in the log."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


class AccessLogger:
    """Callable given to the connection: ``(request, status, body_bytes)`` -> one line."""

    def __init__(self, fmt: str = COMBINED) -> None:
        self.fmt = fmt

    def __call__(self, request: Any, status: int, length: int) -> None:
        try:
            access_log.info(self.fmt % _Atoms(request, status, length))
        except Exception:
            logging.getLogger("wsgiloop.error").exception("bad access log format %r", self.fmt)


#: The fields of a JSON access log line, in order (docs/logging.md describes them).
JSON_FIELDS = ("time", "remote_addr", "method", "path", "query", "protocol", "status",
               "bytes", "duration", "referer", "user_agent", "request_id")


def access_fields(request: Any, status: int, length: int) -> dict[str, Any]:
    """The JSON access log's fields for one response; absent values are None."""
    head = request.head
    atoms = _Atoms(request, status, length)
    remote = atoms["h"]
    request_id = head.get("x-request-id")
    if request_id is None and request.response_headers:
        found = _field(request.response_headers, "x-request-id")
        request_id = None if found == "-" else found
    return {
        "time": iso_time(request.start_time),
        "remote_addr": None if remote == "-" else remote,
        "method": head.method,
        "path": unquote(head.path, errors="backslashreplace"),  # JSON escapes controls
        "query": head.query,
        "protocol": head.version,
        "status": status,
        "bytes": length,
        "duration": round(time.time() - request.start_time, 6),
        "referer": head.get("referer"),
        "user_agent": head.get("user-agent"),
        "request_id": request_id,
    }


class JSONAccessLogger:
    """``--log-format json``: one JSON object per response.  The record's message is the
    object's text, and the record carries the fields as ``wsgiloop_access``."""

    def __call__(self, request: Any, status: int, length: int) -> None:
        try:
            fields = access_fields(request, status, length)
            access_log.info(json.dumps(fields, ensure_ascii=False),
                            extra={ACCESS_FIELDS_ATTR: fields})
        except Exception:
            logging.getLogger("wsgiloop.error").exception("cannot write the access log")


def make_access_logger(settings: Any) -> AccessLogger | JSONAccessLogger | None:
    """The access logger for this worker: None when no access record would be written
    (no --access-log, no syslog for it, no log config giving it a handler)."""
    if not access_logging_on():
        return None
    if settings.log_format == "json":
        return JSONAccessLogger()
    return AccessLogger(settings.access_log_format)
