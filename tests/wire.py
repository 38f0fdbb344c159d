"""A WSGI application that forwards each request over HTTP to a live server.

``webtest.TestApp(WireApp(url))`` runs the same WebTest assertions against a real
wsgiloop process instead of calling the application in-process: WebTest builds the
request (cookies, forms, uploads) as usual, :class:`WireApp` sends it with
:mod:`http.client` and hands back exactly what came over the wire.

* The request's headers are sent as WebTest made them, ``Host`` included, so the
  application sees the same host name both ways.
* Response headers are passed on in order and with repeats (several ``Set-Cookie``),
  except the hop-by-hop ones, which describe this connection only; the raw list,
  hop-by-hop headers included, is kept in :attr:`WireApp.last`.
* One keep-alive connection is used for as long as the server keeps it open.

:func:`webtest_client` is the body of a ``client`` fixture that runs each test both ways.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import webtest
from support import header_value

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding",
                        "upgrade"})
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


@dataclass
class Exchange:
    """What went over the wire for one request."""

    method: str
    target: str
    status: int
    reason: str
    version: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


class WireApp:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http:// URL, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self.history: list[Exchange] = []

    @property
    def last(self) -> Exchange:
        return self.history[-1]

    def close(self) -> None:
        self.conn.close()

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
        target = quote(path.encode("latin-1"), safe=_PATH_SAFE)
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]

        headers: list[tuple[str, str]] = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
                if name.lower() not in HOP_BY_HOP:
                    headers.append((name, value))
        if environ.get("CONTENT_TYPE"):
            headers.append(("Content-Type", environ["CONTENT_TYPE"]))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if body or method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))

        self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            self.conn.putheader(name, value)
        self.conn.endheaders(body or None)
        response = self.conn.getresponse()
        data = response.read()  # http.client undoes chunked framing
        raw_headers = list(response.getheaders())
        self.history.append(Exchange(method, target, response.status, response.reason,
                                     response.version, raw_headers, data))
        if response.will_close:
            self.conn.close()

        forwarded = [(k, v) for k, v in raw_headers if k.lower() not in HOP_BY_HOP]
        start_response(f"{response.status} {response.reason}", forwarded)
        return [data]


def webtest_client(request: pytest.FixtureRequest,
                   in_process_app: Callable[[], Any]) -> Iterator[webtest.TestApp]:
    """Body of a ``client`` fixture with ``params=["in-process", "wire"]``.

    "in-process": WebTest on ``in_process_app()``.  "wire": WebTest on a :class:`WireApp`
    for the ``live_server`` fixture; after the test, something must have gone over the
    wire and the server log must hold no warning, error or traceback.
    """
    if request.param == "in-process":
        yield webtest.TestApp(in_process_app())
        return
    server = request.getfixturevalue("live_server")
    wire = WireApp(server.url)
    try:
        yield webtest.TestApp(wire)
    finally:
        wire.close()
    assert wire.history, "nothing went over the wire"
    assert not re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback", server.log), server.log


def wire_of(client: webtest.TestApp) -> WireApp | None:
    """The client's :class:`WireApp` when it runs over the wire, None in process."""
    return client.app if isinstance(client.app, WireApp) else None
