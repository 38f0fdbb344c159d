"""An :class:`~wsgiloop.iostream.IOStream` over TLS.

Kept apart from :mod:`wsgiloop.iostream` so that only a server with a certificate
imports :mod:`ssl` (OpenSSL costs a worker some megabytes of memory).
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any

from .ioloop import READ, WRITE, IOLoop
from .iostream import IOStream


class SSLIOStream(IOStream):
    """An :class:`IOStream` over TLS.

    The handshake runs on the loop first (no data is delivered before it completes); a
    peer that fails it -- plain HTTP sent to a TLS port, say -- is closed quietly.
    ``sendmsg`` and ``sendfile`` do not exist for TLS sockets: queued buffers are joined
    and files are read and written.
    """

    _WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError)
    _gather = False
    # A TLS send takes all it is given or reports nothing sent: smaller pieces keep the
    # progress seen (for the send timeout) and the copies made by joining small.
    _max_send = 65536

    __slots__ = ("handshake_done",)

    def __init__(self, sock: ssl.SSLSocket, loop: IOLoop, **kwargs: Any) -> None:
        kwargs["use_sendfile"] = False
        super().__init__(sock, loop, **kwargs)
        self.handshake_done = False

    def _handle_events(self, fd: int, events: int) -> None:
        if not self.handshake_done:
            self._do_handshake()
            if not self.handshake_done or self.closed:
                return
        if events & READ:
            self._on_readable()
        self._handle_other_events(events)

    def _do_handshake(self) -> None:
        try:
            self.socket.do_handshake()
        except ssl.SSLWantReadError:
            self._set_interest(READ)
            return
        except ssl.SSLWantWriteError:
            self._set_interest(WRITE)
            return
        except (ssl.SSLError, OSError, ValueError):
            self._close_unanswered()  # not TLS, or a failed negotiation
            return
        self.handshake_done = True
        self._interest = -1  # force the next update
        self._set_interest(self._wanted_interest())

    def _close_unanswered(self) -> None:
        """Close after a failed handshake with a FIN, not a reset: discard what the peer
        sent (unread input would make the kernel reset the connection) and shut down."""
        try:
            while os.read(self.fileno, 65536):
                pass
        except OSError:
            pass
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()

    def _on_readable(self) -> None:
        self._receive_once()
        # Decrypted bytes may wait inside the TLS object, where epoll cannot see them.
        while not self.closed and not self.reading_paused and not self.read_closed \
                and self.socket.pending():
            self._receive_once()

    def _receive_once(self) -> None:
        try:
            data = self.socket.recv(self.read_chunk_size)
        except self._WOULD_BLOCK:
            return
        except OSError as exc:
            self._fail(exc)
            return
        self._received(data)

