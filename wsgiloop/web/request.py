"""The request as a native handler sees it: :class:`WebRequest`.

It wraps the connection layer's request (anything with ``head``, ``body``, ``peer``,
``scheme`` as :class:`wsgiloop.delegate.Request` has them) and works out the rest on first
use: the header map, the body bytes, query and form arguments, uploaded files, cookies.
Malformed query strings or form bodies raise
:class:`~wsgiloop.web.httputil.FormError`, which handlers turn into 400.
"""

from __future__ import annotations

import time
from typing import Any

from ..http import hosts
from .httputil import (
    FormError,
    Headers,
    UploadedFile,
    parse_body_arguments,
    parse_cookie_header,
    parse_query,
)

__all__ = ["FormError", "WebRequest"]


class _from_raw:
    """An attribute worked out from the connection's request on first use, then kept in
    the instance (which an assignment also sets)."""

    def __init__(self, get: Any) -> None:
        self.get = get

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, request: Any, owner: type | None = None) -> Any:
        if request is None:
            return self
        value = request.__dict__[self.name] = self.get(request.connection)
        return value


class WebRequest:
    """One HTTP request.

    Attributes: ``method``, ``uri`` (the request target as sent), ``path`` (its path,
    still percent-encoded), ``decoded_path`` (what routes matched), ``query`` (raw),
    ``version``, ``protocol`` (``http``/``https``), ``host`` (the Host value, port
    included), ``host_name`` (without the port, lower-cased), ``remote_ip`` and
    ``connection`` (the underlying request object).  ``body`` is the whole body as
    bytes (read on first use).
    """

    # Worked out on first use (class-level defaults: an instance sets its own).
    _body: bytes | None = None
    _cookies: dict[str, str] | None = None
    _query_arguments: dict[str, list[str]] | None = None
    _body_arguments: dict[str, list[str]] | None = None
    _files: dict[str, list[UploadedFile]] | None = None

    def __init__(self, raw: Any, decoded_path: str) -> None:
        self.connection = raw
        self.method: str = raw.head.method
        self.decoded_path = decoded_path
        self._start_time = time.monotonic()
        # (also worked out on first use, but read on every request: set here, since an
        # instance's own attribute is found faster than a class's default)
        self._headers: Headers | None = None

    # Read from the connection's request on first use (most handlers read few of them);
    # each can also be assigned, as a proxy-aware application may do with remote_ip.
    uri: str = _from_raw(lambda raw: raw.head.target)  # type: ignore[assignment]
    path: str = _from_raw(lambda raw: raw.head.path)  # type: ignore[assignment]
    query: str = _from_raw(lambda raw: raw.head.query)  # type: ignore[assignment]
    version: str = _from_raw(lambda raw: raw.head.version)  # type: ignore[assignment]
    protocol: str = _from_raw(lambda raw: raw.scheme)  # type: ignore[assignment]
    host: str = _from_raw(lambda raw: raw.head.host or "")  # type: ignore[assignment]
    host_name: str = _from_raw(  # type: ignore[assignment]
        lambda raw: hosts.host_name(raw.head.host or "").lower())
    remote_ip: str = _from_raw(  # type: ignore[assignment]
        lambda raw: raw.peer[0] if isinstance(raw.peer, tuple) else "")

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.connection.head.headers)
        return self._headers

    def header_values(self, name: str) -> list[str]:
        """The values of request field ``name``: those of :attr:`headers` once it is
        made, else those received (without making the header map for one look-up)."""
        if self._headers is not None:
            return self._headers.get_list(name)
        name = name.lower()
        size = len(name)
        values = []
        for key, value in self.connection.head.headers:
            # Field names are tokens (ASCII), whose lower() has the same length: the
            # length rules out most fields without making a lower-cased copy.
            if len(key) == size and key.lower() == name:
                values.append(value)
        return values

    @property
    def body(self) -> bytes:
        if self._body is None:
            source = self.connection.body
            if source is None:
                self._body = b""
            elif hasattr(source, "getvalue"):
                self._body = source.getvalue()
            else:
                source.seek(0)
                self._body = source.read()
        return self._body

    @property
    def cookies(self) -> dict[str, str]:
        """Request cookies by name (values as sent, unquoted)."""
        if self._cookies is None:
            self._cookies = parse_cookie_header(self.headers.get_list("Cookie"))
        return self._cookies

    @property
    def query_arguments(self) -> dict[str, list[str]]:
        if self._query_arguments is None:
            self._query_arguments = parse_query(self.query)
        return self._query_arguments

    def _parse_body(self) -> None:
        content_type = self.headers.get("Content-Type", "")
        fields, files = parse_body_arguments(content_type, self.body) if self.body else ({}, {})
        self._body_arguments, self._files = fields, files

    @property
    def body_arguments(self) -> dict[str, list[str]]:
        """Fields of a urlencoded or multipart form body (empty for other bodies)."""
        if self._body_arguments is None:
            self._parse_body()
        return self._body_arguments  # type: ignore[return-value]

    @property
    def files(self) -> dict[str, list[UploadedFile]]:
        """Uploaded files of a multipart body: ``name -> [UploadedFile, ...]``."""
        if self._files is None:
            self._parse_body()
        return self._files  # type: ignore[return-value]

    @property
    def arguments(self) -> dict[str, list[str]]:
        """Query and body arguments together (query values first)."""
        merged = {name: list(values) for name, values in self.query_arguments.items()}
        for name, values in self.body_arguments.items():
            merged.setdefault(name, []).extend(values)
        return merged

    def full_url(self) -> str:
        return f"{self.protocol}://{self.host}{self.uri}"

    def request_time(self) -> float:
        """Seconds since the handler got this request."""
        return time.monotonic() - self._start_time

    def __repr__(self) -> str:
        return f"<WebRequest {self.method} {self.uri} from {self.remote_ip or '?'}>"

