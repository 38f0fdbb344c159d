"""The exceptions of the native layer: :class:`HTTPError` (raise it to answer with an
error status), :class:`MissingArgumentError` (a 400) and :class:`ClientDisconnected`."""

from __future__ import annotations

import http.client
from typing import Any

__all__ = ["ClientDisconnected", "HTTPError", "MissingArgumentError"]


class HTTPError(Exception):
    """Raise to answer with ``status_code``.

    ``log_message`` (formatted with ``args``, %-style) goes to the error log, never to the
    client; ``reason`` replaces the standard reason phrase; ``headers`` are set on the
    error response (``Allow`` for 405, say).
    """

    def __init__(self, status_code: int = 500, log_message: str | None = None, *args: Any,
                 reason: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code, log_message)
        self.status_code = status_code
        self.log_message = log_message
        self.args_for_log = args
        self.reason = reason
        self.headers = headers or {}

    def __str__(self) -> str:
        reason = self.reason or http.client.responses.get(self.status_code, "Unknown")
        text = f"HTTP {self.status_code}: {reason}"
        if self.log_message:
            text += f" ({self.formatted_log_message()})"
        return text

    def formatted_log_message(self) -> str | None:
        """``log_message`` formatted with the arguments given for it."""
        if self.log_message and self.args_for_log:
            return self.log_message % self.args_for_log
        return self.log_message


class MissingArgumentError(HTTPError):
    """A required argument is missing: 400."""

    def __init__(self, name: str) -> None:
        super().__init__(400, "missing argument %s", name, reason=f"Missing argument {name}")
        self.arg_name = name


class ClientDisconnected(Exception):
    """The client has gone away; raised by :meth:`RequestHandler.flush`."""
