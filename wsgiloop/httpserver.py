"""Accepts connections on listening sockets and runs an :class:`~wsgiloop.server.HTTPConnection`
for each, over a plain or TLS :class:`~wsgiloop.iostream.IOStream`."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .delegate import Request, RequestDelegate
from .ioloop import READ, IOLoop, Timer
from .iostream import IOStream
from .params import ConnectionParameters
from .server import HTTPConnection

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("wsgiloop.error")


class HTTPServer:
    """Accepts connections on listening sockets and runs an :class:`HTTPConnection` each.

    :meth:`start` registers the sockets with the loop; :meth:`stop_accepting` and
    :meth:`close_idle` serve a graceful stop; ``connections`` are the open ones.

    With ``max_connections`` open, it stops listening (the sockets leave the loop) until
    one closes: new connections wait in the listen backlog, where another process sharing
    the socket takes them.  It also stops for a moment when it runs out of descriptors.
    Two limits of that: a connection in a ``SO_REUSEPORT`` socket of this process's own
    waits for it; and one whose exclusive wake-up came here just as the limit was reached
    may wait until the next connection wakes another process, or this one has room.
    """

    def __init__(self, loop: IOLoop, sockets: list[socket.socket], params: ConnectionParameters,
                 delegate: RequestDelegate, *, ssl_context: ssl.SSLContext | None = None,
                 on_response: Callable[[Request, int, int], None] | None = None,
                 accept_batch: int = 64, max_connections: int | None = None) -> None:
        self.loop = loop
        self.sockets = sockets
        self.params = params
        self.delegate = delegate
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        #: Connections taken per wake-up.  Where several workers share a socket, 1 lets
        #: the next wake-up go to another worker instead of one taking a whole burst.
        self.accept_batch = accept_batch
        self.on_response = on_response
        #: Most connections open at once (None: no limit); see the class docstring.
        self.max_connections = max_connections
        self.connections: set[HTTPConnection] = set()
        #: Connections accepted so far (read by the metrics' sampler).
        self.accepted = 0
        self._accepting = False
        self._listening = False  # the sockets' handlers are in the loop
        self._pause: Timer | None = None  # accepting paused after EMFILE and the like

    def start(self) -> None:
        self._accepting = True
        for sock in self.sockets:
            sock.setblocking(False)
        self._update_listening()

    def _update_listening(self) -> None:
        """Listen exactly while accepting, not paused, and below ``max_connections``."""
        listen = self._accepting and self._pause is None and (
            self.max_connections is None or len(self.connections) < self.max_connections)
        if listen == self._listening:
            return
        self._listening = listen
        for sock in self.sockets:
            if listen:
                # Exclusive: of the workers sharing this socket, only one is woken per
                # connection, instead of all of them racing for it.
                self.loop.add_handler(sock.fileno(), self._on_acceptable, READ,
                                      exclusive=True)
            else:
                self.loop.remove_handler(sock.fileno())

    def _on_acceptable(self, fd: int, events: int) -> None:
        sock = next(s for s in self.sockets if s.fileno() == fd)
        for _ in range(self.accept_batch):
            try:
                conn_sock, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept a connection: %s; pausing accepts for 0.5s", exc)
                    self._pause_accepting(0.5)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO):
                    continue
                if exc.errno == errno.EINVAL:  # the master shut the socket down (stopping)
                    self.loop.remove_handler(fd)
                    return
                raise
            self._serve(conn_sock, peer, sock)
            if not self._listening:
                return  # at max_connections

    def _pause_accepting(self, seconds: float) -> None:
        if self._pause is not None:
            self._pause.cancel()
        self._pause = self.loop.call_later(seconds, self._end_pause)
        self._update_listening()

    def _end_pause(self) -> None:
        self._pause = None
        self._update_listening()

    def _connection_closed(self, connection: HTTPConnection) -> None:
        self.connections.discard(connection)
        if not self._listening:
            self._update_listening()

    def _serve(self, conn_sock: socket.socket, peer: Any, listener: socket.socket) -> None:
        params = self.params
        try:
            sockname = conn_sock.getsockname()
        except OSError:
            conn_sock.close()
            return
        if self.ssl_context is not None:
            from .tlsstream import SSLIOStream  # only a TLS server imports ssl

            try:
                tls_sock = self.ssl_context.wrap_socket(conn_sock, server_side=True,
                                                        do_handshake_on_connect=False)
            except (OSError, ValueError):
                conn_sock.close()
                return
            stream: IOStream = SSLIOStream(tls_sock, self.loop, high_water=params.high_water,
                                           low_water=params.low_water)
        else:
            stream = IOStream(conn_sock, self.loop, high_water=params.high_water,
                              low_water=params.low_water)
        connection = HTTPConnection(stream, self.loop, params, self.delegate, peer or None,
                                    sockname, self.scheme, self.on_response,
                                    on_close=self._connection_closed)
        self.connections.add(connection)
        self.accepted += 1
        if self.max_connections is not None and \
                len(self.connections) >= self.max_connections:
            self._update_listening()

    def stop_accepting(self) -> None:
        """Stop accepting and close the listening sockets."""
        if not self._accepting:
            return
        self._accepting = False
        self._update_listening()
        for sock in self.sockets:
            sock.close()

    def close_idle(self, grace: float = 0.0) -> int:
        """Close connections idle for at least ``grace`` seconds; returns how many remain.

        A small grace lets a keep-alive client that is about to send its next request
        have it answered (with ``Connection: close``) instead of finding the connection
        closed under it.
        """
        for connection in list(self.connections):
            connection.keep_alive_allowed = False
            connection.going_away()  # a WebSocket says goodbye (1001)
            if connection.idle and connection.idle_for() >= grace:
                connection.close()
        return sum(1 for c in self.connections if not c.stream.closed)

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.close()
