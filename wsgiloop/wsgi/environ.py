"""The PEP 3333 environ: :class:`EnvironBuilder`, ``wsgi.input`` for each kind of body, and
``wsgi.file_wrapper``.

``PATH_INFO`` is percent-decoded and presented as latin-1, so the raw bytes survive;
``QUERY_STRING`` is raw; header names with an underscore never reach the application;
repeated fields are joined with commas (cookies with "; ").
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from .. import __version__
from ..delegate import Request
from ..http.hosts import host_name
from ..http.proxies import TrustedProxies, resolve_forwarded


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks; the gateway sends real files
    with ``sendfile`` instead of iterating."""

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            block = read(self.block_size)
            if not block:
                return
            yield block

    def fileno(self) -> int | None:
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None


class _EmptyInput:
    """``wsgi.input`` for a request without a body."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""

    def readlines(self, hint: int = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Iterator[bytes]:
        return iter(())


class _DeferredInput:
    """``wsgi.input`` for an ``Expect: 100-continue`` request: the first read asks the
    connection for the body (sending ``100 Continue``), then reads from it."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._body: Any = None

    def _fetch(self) -> Any:
        if self._body is None:
            self._request.read_body()
            self._body = self._request.body or io.BytesIO(b"")
        return self._body

    def read(self, size: int = -1) -> bytes:
        return self._fetch().read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._fetch().readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._fetch().readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._fetch())


_EMPTY_INPUT = _EmptyInput()

def _environ_key(name: str) -> str:
    """The environ key of a request field name (PEP 3333: ``HTTP_`` and the name in
    upper case, dashes as underscores)."""
    return "HTTP_" + name.upper().replace("-", "_")


# The environ keys of the usual request field names, as clients spell them (a fixed table
# worked out at import by _environ_key, which build() applies to every other name): none
# holds "_" or is Content-Type or Content-Length, which build() treats apart.
_ENVIRON_KEYS = {spelling: _environ_key(name) for name in (
    "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Accept-Charset",
    "Authorization", "Cache-Control", "Connection", "Cookie", "DNT", "Forwarded",
    "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
    "Keep-Alive", "Origin", "Pragma", "Priority", "Range", "Referer", "Sec-Fetch-Dest",
    "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "TE", "Upgrade",
    "Upgrade-Insecure-Requests", "Via", "X-Forwarded-For", "X-Forwarded-Host",
    "X-Forwarded-Proto", "X-Real-IP", "X-Request-ID", "X-Requested-With",
) for spelling in (name, name.lower())}


class EnvironBuilder:
    """Builds the PEP 3333 environ of each request.

    Each environ is a new dict: a copy of one template, made once, of the keys that
    never change (with the defaults for a request without a body), with the keys of the
    connection (:meth:`base`) and of the request set on it.  Nothing one request saw
    reaches another.  ``root_path`` is the application's mount point (``SCRIPT_NAME``,
    stripped from ``PATH_INFO``); forwarding headers are believed from
    ``trusted_proxies`` only.
    """

    def __init__(self, *, root_path: str = "", errors: Any = None, multithread: bool = True,
                 multiprocess: bool = False,
                 trusted_proxies: TrustedProxies | None = None) -> None:
        #: Peers whose Forwarded / X-Forwarded-* headers are believed (None: nobody's).
        self.trusted_proxies = trusted_proxies
        # A WSGI string: the UTF-8 bytes of the configured text, as latin-1 (PEP 3333),
        # like the percent-decoded PATH_INFO it is compared with.
        self.root_path = root_path.rstrip("/").encode("utf-8").decode("latin-1")
        self._template = {
            "SCRIPT_NAME": self.root_path,
            "wsgi.version": (1, 0),
            "wsgi.errors": errors if errors is not None else sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "SERVER_SOFTWARE": f"wsgiloop/{__version__}",
            "wsgi.input": _EMPTY_INPUT,
            "CONTENT_TYPE": "",
            "CONTENT_LENGTH": "",
            # Set for every request (by build()): here so that a copy has room for them.
            "REQUEST_METHOD": "",
            "PATH_INFO": "",
            "QUERY_STRING": "",
            "RAW_URI": "",
            "SERVER_PROTOCOL": "",
        }

    def base(self, request: Request) -> dict[str, Any]:
        """The keys every request of ``request``'s connection shares: the template with
        the scheme and the server's and peer's addresses (a new dict).  ``SERVER_NAME``
        is left to :meth:`build` when the server is not on an IP socket (it comes from
        each request's Host then)."""
        environ = self._template.copy()
        environ["wsgi.url_scheme"] = request.scheme
        sockname = request.sockname
        if isinstance(sockname, tuple):
            environ["SERVER_NAME"] = sockname[0]
            environ["SERVER_PORT"] = str(sockname[1])
        else:
            environ["SERVER_PORT"] = "443" if request.scheme == "https" else "80"
        peer = request.peer
        if isinstance(peer, tuple):
            environ["REMOTE_ADDR"] = peer[0]
            environ["REMOTE_PORT"] = str(peer[1])
        else:
            environ["REMOTE_ADDR"] = ""
        return environ

    def build(self, request: Request) -> dict[str, Any]:
        """The environ for ``request`` (a new dict each time): a copy of what :meth:`base`
        gives for the request's connection -- worked out once per connection and kept in
        its ``connection_data``, where no application sees it -- with the request's keys
        set."""
        head = request.head
        data = request.connection_data
        base = data.get(self)
        if base is None:
            base = data[self] = self.base(request)
        environ = base.copy()
        if "SERVER_NAME" not in environ:
            environ["SERVER_NAME"] = host_name(head.host or "localhost")
        path = head.path
        if "%" in path:
            path = unquote_to_bytes(path).decode("latin-1")
        root = self.root_path
        if root and (path == root or path.startswith(root + "/")):
            path = path[len(root):]
        environ["REQUEST_METHOD"] = head.method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = head.query
        environ["RAW_URI"] = head.target
        environ["SERVER_PROTOCOL"] = head.version
        keys = _ENVIRON_KEYS
        for name, value in head.headers:
            key = keys.get(name)
            if key is None:
                if "_" in name:
                    # X_Forwarded_For and X-Forwarded-For would both become
                    # HTTP_X_FORWARDED_FOR; a proxy that strips only the dashed spelling
                    # would let a client forge it, so names with "_" do not reach the app.
                    continue
                key = _environ_key(name)
                if key == "HTTP_CONTENT_TYPE":
                    environ["CONTENT_TYPE"] = value
                    continue
                if key == "HTTP_CONTENT_LENGTH":
                    continue
            if key in environ:
                # RFC 9110 5.3: repeated fields combine with commas (cookies with "; ").
                sep = "; " if key == "HTTP_COOKIE" else ","
                environ[key] = environ[key] + sep + value
            else:
                environ[key] = value
        if head.host is not None:
            environ["HTTP_HOST"] = head.host
        trusted = self.trusted_proxies
        if trusted is not None and ("HTTP_FORWARDED" in environ or "HTTP_X_FORWARDED_FOR"
                                    in environ or "HTTP_X_FORWARDED_PROTO" in environ
                                    or "HTTP_X_FORWARDED_HOST" in environ) \
                and trusted.trusts(request.peer):
            client, scheme, host = resolve_forwarded(
                trusted, environ.get("HTTP_FORWARDED"), environ.get("HTTP_X_FORWARDED_FOR"),
                environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("HTTP_X_FORWARDED_HOST"))
            if client:
                environ["REMOTE_ADDR"] = client
            if scheme:
                environ["wsgi.url_scheme"] = scheme
            if host:
                environ["HTTP_HOST"] = host
        if request.body_deferred:
            environ["wsgi.input"] = _DeferredInput(request)
            environ["CONTENT_LENGTH"] = str(head.content_length) if head.content_length else ""
        elif request.body is not None:
            environ["wsgi.input"] = request.body
            environ["CONTENT_LENGTH"] = str(request.body_length)
        elif head.content_length == 0:
            environ["CONTENT_LENGTH"] = "0"
        return environ
