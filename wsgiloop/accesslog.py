"""Access log lines in gunicorn's atom syntax; the default is Apache's combined format.

Atoms: ``h`` remote address, ``l`` ``-``, ``u`` user (``-``), ``t`` time in brackets,
``r`` request line, ``m`` method, ``U`` path, ``q`` query, ``H`` protocol, ``s`` status,
``b`` body bytes (``-`` for none), ``B`` body bytes, ``f`` referer, ``a`` user agent,
``T`` seconds, ``M`` milliseconds, ``D`` microseconds, ``p`` pid, and ``{name}i`` for a
request header.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

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
            return head.path
        if key == "q":
            return head.query
        if key == "H":
            return head.version
        if key == "s":
            return str(self.status)
        if key == "b":
            return str(self.length) if self.length else "-"
        if key == "B":
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
        if key == "p":
            return f"<{os.getpid()}>"
        if key.startswith("{") and key.endswith("}i"):
            return head.get(key[1:-2], "-")
        return "-"


class AccessLogger:
    """Callable given to the connection: ``(request, status, body_bytes)`` -> one line."""

    def __init__(self, fmt: str = COMBINED) -> None:
        self.fmt = fmt

    def __call__(self, request: Any, status: int, length: int) -> None:
        try:
            access_log.info(self.fmt % _Atoms(request, status, length))
        except Exception:
            logging.getLogger("wsgiloop.error").exception("bad access log format %r", self.fmt)
