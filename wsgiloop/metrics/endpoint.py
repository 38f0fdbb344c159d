"""A small HTTP/1.1 server for the master's metrics address, driven by the master's
own ``select`` loop (the master has no IOLoop: see docs/architecture.md).

Each connection carries one GET or HEAD request, parsed by wsgiloop's sans-I/O parser,
and gets one response with ``Connection: close``.  Sockets are non-blocking; a client
that sends nothing whole within :data:`CLIENT_SECONDS` is dropped, and beyond
:data:`MAX_CLIENTS` at once the client connected longest is dropped to make room for the
new one (a few idle connections must not keep a liveness probe out).  One call of
:meth:`Endpoint.handle` accepts at most :data:`MAX_CLIENTS` connections, the rest wait in
the backlog for the next pass: nothing a client does can stall the master, not even a flood
of connections.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from http import HTTPStatus

from ..http import END_OF_MESSAGE, NEED_DATA, HTTPLimits, ProtocolError, RequestHead, RequestParser

CLIENT_SECONDS = 10.0
MAX_CLIENTS = 32
_LIMITS = HTTPLimits(max_request_line=4096, max_header_count=50,
                     max_header_field_size=4096, max_head_size=16384, max_body_size=1024)

#: What a route returns: status, content type, body.
Answer = tuple[int, str, bytes]


class _Client:
    __slots__ = ("sock", "parser", "head", "out", "since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = RequestParser(_LIMITS)
        self.head: RequestHead | None = None
        self.out = b""
        self.since = time.monotonic()


class Endpoint:
    """Serves ``routes`` (path -> function giving an :data:`Answer`) on ``listeners``.

    Call :meth:`fds` for what to wait on, then :meth:`handle` with what is ready.
    """

    def __init__(self, listeners: list[socket.socket],
                 routes: dict[str, Callable[[], Answer]]) -> None:
        self.listeners = listeners
        self.routes = routes
        self._clients: dict[int, _Client] = {}
        for sock in listeners:
            sock.setblocking(False)

    def fds(self) -> tuple[list[int], list[int]]:
        """The descriptors to wait on: (for reading, for writing)."""
        readers = [s.fileno() for s in self.listeners]
        writers = []
        for fd, client in self._clients.items():
            (writers if client.out else readers).append(fd)
        return readers, writers

    def handle(self, readable: list[int], writable: list[int]) -> None:
        for fd in readable:
            client = self._clients.get(fd)
            if client is not None and not client.out:
                self._read(client)
        for fd in writable:
            client = self._clients.get(fd)
            if client is not None:
                self._write(client)
        # Accepting comes last: a new connection may be given the descriptor of a client
        # dropped in this pass, and the lists above speak of the old one.
        for sock in self.listeners:
            if sock.fileno() in readable:
                self._accept(sock)
        deadline = time.monotonic() - CLIENT_SECONDS
        for client in [c for c in self._clients.values() if c.since < deadline]:
            self._drop(client)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. EMFILE: the connection waits in the backlog
            if len(self._clients) >= MAX_CLIENTS:
                self._drop(min(self._clients.values(), key=lambda c: c.since))
            sock.setblocking(False)
            self._clients[sock.fileno()] = _Client(sock)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        if not data:
            self._drop(client)
            return
        parser = client.parser
        parser.feed(data)
        try:
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    return
                if isinstance(event, RequestHead):
                    client.head = event
                elif event is END_OF_MESSAGE:
                    break
                # else body bytes: read and forgotten (no route takes a body)
            head = client.head
            assert head is not None
            client.out = self._answer(head)
        except ProtocolError as exc:
            client.out = _response(exc.status, f"{exc.status} {_phrase(exc.status)}\n")
        self._write(client)

    def _answer(self, head: RequestHead) -> bytes:
        route = self.routes.get(head.path)
        if route is None:
            return _response(404, "404 Not Found: try /metrics, /livez or /readyz\n",
                             head.method == "HEAD")
        if head.method not in ("GET", "HEAD"):
            return _response(405, "405 Method Not Allowed\n", extra="Allow: GET, HEAD\r\n")
        status, content_type, body = route()
        return _response(status, body, head.method == "HEAD", content_type)

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def _write(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.out = client.out[sent:]
        if not client.out:
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._drop(client)

    def close_in_child(self) -> None:
        """After fork, in a worker: close every socket here (without shutting anything
        down), so that the master alone holds the metrics address and its clients."""
        for client in self._clients.values():
            client.sock.close()
        self._clients.clear()
        for sock in self.listeners:
            sock.close()

    def close_clients(self) -> None:
        """Close every client connection (the listeners are their owner's to close)."""
        for client in list(self._clients.values()):
            self._drop(client)


def _response(status: int, body: str | bytes, head_only: bool = False,
              content_type: str = "text/plain; charset=utf-8", extra: str = "") -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8")
    head = (f"HTTP/1.1 {status} {_phrase(status)}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\n{extra}Connection: close\r\n\r\n"
            ).encode("latin-1")
    return head if head_only else head + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
