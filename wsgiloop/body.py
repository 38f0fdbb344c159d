"""Receiving the request bodies of one connection: :class:`BodyReceiver`.

The connection parses; a :class:`BodyReceiver` keeps what the parser hands it of a
request body until the request takes it.  It promises:

* One body at a time.  :meth:`~BodyReceiver.begin` starts one (dropping whatever the last
  one left), :meth:`~BodyReceiver.add` stores its bytes, and :meth:`~BodyReceiver.take`
  gives the whole of it to the request as ``request.body`` (a readable binary file at
  offset 0, which the request owns from then on; None for no bytes) and
  ``request.body_length``: in memory up to ``spool_threshold`` bytes, beyond that in a
  temporary file in ``spool_dir`` (:class:`~wsgiloop.spool.BodySpool`).
* A body that cannot be stored is dropped, logged once, and raised as the
  :class:`~wsgiloop.http.ProtocolError` to answer: 507 when the disk, a quota or the file
  size limit is full, 503 for anything else.
* Its deadline (:meth:`~BodyReceiver.deadline`): ``body_timeout`` after the last progress
  (``progress``, which the connection moves when body bytes arrive), or earlier once
  ``body_timeout`` has passed since the body began and its average rate is below
  ``body_min_rate``; :meth:`~BodyReceiver.late` says which of the two ran out.
* A deferred body (``Expect: 100-continue``, received only when the application asks):
  :meth:`~BodyReceiver.defer` holds its request and the callback to tell,
  :meth:`~BodyReceiver.pump` stores what the parser has of it, and
  :meth:`~BodyReceiver.end` hands it over (or records the protocol error that stopped
  it) and returns whom to tell what -- once, however many times it is called.

It reads no socket, arms no timer and knows nothing of the connection's state: the
connection tells it the time and when bytes come, and acts on the deadlines, errors and
callbacks it is given back.
"""

from __future__ import annotations

import errno
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .http import END_OF_MESSAGE, NEED_DATA, ProtocolError, RequestParser
from .params import ConnectionParameters
from .spool import BodySpool

if TYPE_CHECKING:
    from .delegate import Request

log = logging.getLogger("wsgiloop.error")

# Errors storing a body that mean the disk, a quota or the file size limit is full:
# answered with 507 Insufficient Storage (anything else with 503).
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

Finished = Callable[[BaseException | None], Any]


class BodyReceiver:
    """The bodies of one connection's requests, one at a time (made with the first; by
    then any PROXY header has named the client, ``peer``, for the log)."""

    __slots__ = ("progress", "_since", "_params", "_peer", "_spool", "_deferred")

    def __init__(self, params: ConnectionParameters, peer: Any) -> None:
        self._params = params
        self._peer = peer
        self._spool = BodySpool(params.spool_threshold, params.spool_dir)
        #: When the body last made progress, on the connection's clock.
        self.progress = 0.0
        self._since = 0.0
        self._deferred: tuple[Request, Finished] | None = None

    def begin(self, now: float) -> float:
        """Start a body at ``now``; returns its first deadline."""
        self._spool.discard()
        self.progress = self._since = now
        return now + self._params.body_timeout

    def add(self, data: bytes) -> None:
        """Store body bytes; raises ProtocolError (507 or 503) when they can't be."""
        try:
            self._spool.write(data)
        except OSError as exc:
            raise self._failed(exc) from None

    def take(self, request: Request) -> None:
        """Give the whole body to ``request``; raises ProtocolError as :meth:`add` does."""
        try:
            request.body, request.body_length = self._spool.finish()
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> ProtocolError:
        """The body could not be stored (the spool has dropped it already)."""
        status = 507 if exc.errno in _NO_SPACE else 503
        reason = exc.strerror or str(exc)
        log.error("cannot spool the request body from %s in %s: %s; answering %d",
                  self._peer, self._spool.location, reason, status)
        return ProtocolError(status, f"the request body could not be stored: {reason}")

    def deadline(self) -> float:
        """When the body in progress times out."""
        params = self._params
        deadline = self.progress + params.body_timeout
        if params.body_min_rate:
            # Once body_timeout has passed since the body began, its average rate must
            # stay at body_min_rate: the bytes so far last until this time.
            slow = self._since + max(params.body_timeout,
                                     self._spool.size / params.body_min_rate)
            if slow < deadline:
                deadline = slow
        return deadline

    def late(self, now: float) -> str:
        """What ran out, at ``now`` (past :meth:`deadline`), in words for the log."""
        if self.progress + self._params.body_timeout <= now:
            return "request body timed out"
        return (f"request body too slow ({self._spool.size} bytes in "
                f"{now - self._since:.0f}s)")

    def defer(self, request: Request, finished: Finished, now: float) -> float:
        """Receive the deferred body of ``request`` from ``now`` on, then tell
        ``finished`` (see :meth:`end`); returns the body's first deadline."""
        self._deferred = (request, finished)
        self.progress = self._since = now
        return now + self._params.body_timeout

    @property
    def deferred(self) -> bool:
        """True while a deferred body is being received."""
        return self._deferred is not None

    def pump(self, parser: RequestParser) -> bool:
        """Store what ``parser`` holds of the deferred body: True once it is whole, False
        while more is to come; raises ProtocolError for a body that breaks its framing,
        its limits, or cannot be stored."""
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                return False
            if event is END_OF_MESSAGE:
                return True
            self.add(event)  # type: ignore[arg-type]

    def end(self, error: BaseException | None) -> tuple[Finished, BaseException | None] | None:
        """Stop receiving the deferred body: give it to its request (unless ``error`` says
        why not), keep a protocol error as ``request.protocol_error``, and return the
        callback with what to tell it (None when no body was deferred)."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return None
        request, finished = deferred
        if error is None:
            try:
                self.take(request)
            except ProtocolError as exc:
                error = exc
        if isinstance(error, ProtocolError):
            request.protocol_error = error
        return finished, error

    def discard(self) -> None:
        """Drop whatever is held of a body (the connection has closed)."""
        self._spool.discard()


def close_body(request: Request) -> None:
    """Close the file of a body given to ``request``, once its response is over (a body
    in memory, a ``BytesIO``, is left as it is)."""
    body = request.body
    if body is not None and not isinstance(body, io.BytesIO):
        body.close()
