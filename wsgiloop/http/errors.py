"""Protocol errors that carry the status code to answer with.

The parser raises :class:`ProtocolError`; the connection driver turns it into a response at
one place and closes the connection, because after a framing error the next request's
boundary can no longer be trusted.
"""

from __future__ import annotations

REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
    507: "Insufficient Storage",
}


class ProtocolError(Exception):
    """A request that cannot be served; ``status`` is the code to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {REASONS.get(status, '')}: {detail}")
        self.status = status
        self.detail = detail
