"""gunicorn's statsd metrics, under gunicorn's names and types, so that its dashboards
keep working:

========================================  =======  ====================================
name                                      type     sent
========================================  =======  ====================================
``gunicorn.requests``                     counter  by a worker, for each response
``gunicorn.request.status.<code>``        counter  by a worker, for each response
``gunicorn.request.duration``             timer    by a worker, for each response (ms)
``gunicorn.workers``                      gauge    by the master, when the count changes
``gunicorn.log.critical|error|warning``   counter  for each such line of the error log
``gunicorn.log.exception``                counter  for each error logged with a traceback
========================================  =======  ====================================

Each name gets ``--statsd-prefix`` (with one dot added, as gunicorn does) in front and
``--dogstatsd-tags`` behind (``|#tag1:value1,tag2``).  Where gunicorn sends one datagram
per metric, a :class:`StatsdClient` gathers lines and sends them several to a datagram
(statsd's newline-separated form, which statsd, Telegraf and the Datadog agent read),
when about a packet's worth is waiting and on :meth:`StatsdClient.flush`; sending
never blocks and its failures are dropped (metrics are best effort, as gunicorn's are).
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

#: gunicorn's default statsd port.
DEFAULT_PORT = 8125
#: Bytes of metric lines sent in one datagram at most (fits an Ethernet frame).
_PACKET = 1400


def parse_statsd_address(text: str) -> tuple[int, Any]:
    """``(family, address)`` for ``--statsd-host``: ``HOST:PORT``, ``[IPV6]:PORT``,
    ``HOST`` (port 8125), or ``unix:PATH`` / ``unix://PATH`` (a datagram socket).
    Raises ValueError with a short reason."""
    text = text.strip()
    if text.startswith("unix:"):
        path = text[len("unix://"):] if text.startswith("unix://") else text[len("unix:"):]
        if path.isdigit():  # gunicorn reads 'unix:8125' as host 'unix', port 8125
            return socket.AF_INET, ("unix", int(path))
        if not path:
            raise ValueError("missing socket path after 'unix:'")
        return socket.AF_UNIX, path
    if text.startswith("udp://"):
        text = text[len("udp://"):]
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("expected [IPV6]:PORT")
        port_text = rest[1:]
        family = socket.AF_INET6
    else:
        host, _, port_text = text.partition(":")
        family = socket.AF_INET
    if not host:
        raise ValueError("expected HOST:PORT or unix:PATH")
    if not re.fullmatch(r"[A-Za-z0-9._:%-]+", host):
        raise ValueError(f"{host!r} is not a host name or address")
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port {port_text!r}")
        port = int(port_text)
    return family, (host, port)


def normalized_prefix(prefix: str) -> str:
    """``--statsd-prefix`` as gunicorn uses it: empty, or ending in exactly one dot."""
    prefix = prefix.rstrip(".")
    return prefix + "." if prefix else ""


class StatsdClient:
    """Sends statsd lines to one address, a few to a datagram."""

    def __init__(self, address: str, prefix: str = "", tags: str = "") -> None:
        """Raises OSError when the host name cannot be resolved: it is resolved once,
        here, so that sending never waits for DNS."""
        self.family, self.address = parse_statsd_address(address)
        if self.family != socket.AF_UNIX:
            host, port = self.address
            family, _, _, _, sockaddr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
            self.family, self.address = family, sockaddr
        self.prefix = normalized_prefix(prefix)
        self.suffix = "|#" + tags if tags else ""
        self._lines: list[str] = []
        self._size = 0
        self._duration = f"{self.prefix}gunicorn.request.duration:"
        #: A response's lines after its duration, by status (they depend on nothing else).
        self._tails: dict[int, str] = {}
        self._sock: socket.socket | None = None

    # -- gunicorn's metric types -----------------------------------------------------------

    def increment(self, name: str, value: int = 1) -> None:
        self._add(f"{self.prefix}{name}:{value}|c|@1.0{self.suffix}")

    def gauge(self, name: str, value: float) -> None:
        self._add(f"{self.prefix}{name}:{value}|g{self.suffix}")

    def response(self, status: int, seconds: float) -> None:
        """gunicorn's three lines for one response."""
        tail = self._tails.get(status)
        if tail is None:
            tail = self._tails[status] = (
                f"|ms{self.suffix}\n{self.prefix}gunicorn.requests:1|c|@1.0{self.suffix}\n"
                f"{self.prefix}gunicorn.request.status.{status}:1|c|@1.0{self.suffix}")
        lines = f"{self._duration}{seconds * 1000:.3f}{tail}"
        self._lines.append(lines)
        self._size += len(lines) + 1
        if self._size >= _PACKET:
            self.flush()

    # -- sending ---------------------------------------------------------------------------

    def _add(self, lines: str) -> None:
        self._lines.append(lines)
        self._size += len(lines) + 1
        if self._size >= _PACKET:
            self.flush()

    def flush(self) -> None:
        """Send what is waiting (dropped if it cannot be sent now)."""
        lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        sock = self._sock or self._connect()
        if sock is None:
            return
        packet: list[str] = []
        size = 0
        for item in lines:
            if packet and size + len(item) >= _PACKET:
                self._send(sock, packet)
                packet, size = [], 0
            packet.append(item)
            size += len(item) + 1
        self._send(sock, packet)

    def _send(self, sock: socket.socket, packet: list[str]) -> None:
        try:
            sock.send("\n".join(packet).encode("ascii", "replace"))
        except OSError:
            pass  # no listener, buffer full...: statsd is best effort

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(self.address)
        except OSError:
            sock.close()
            return None  # tried again at the next flush (the agent may start later)
        self._sock = sock
        return sock

    def after_fork(self) -> None:
        """In a new worker: forget what the master had queued (it sends that itself)."""
        self._lines, self._size = [], 0

    def close(self) -> None:
        self.flush()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class LogCounter(logging.Handler):
    """Counts the error log's warnings, errors, tracebacks and critical lines as
    gunicorn's ``gunicorn.log.*`` statsd counters."""

    def __init__(self, client: StatsdClient) -> None:
        super().__init__(logging.WARNING)
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.CRITICAL:
            kind = "critical"
        elif record.levelno >= logging.ERROR:
            kind = "exception" if record.exc_info else "error"
        else:
            kind = "warning"
        self.client.increment("gunicorn.log." + kind)
