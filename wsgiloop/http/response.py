"""Response framing: the head bytes and the body encoding for one response.

:class:`ResponseFramer` decides, from the request and the application's status and
headers, how the body is delimited:

* no body at all for HEAD, 1xx, 204 and 304 (HEAD keeps the Content-Length the GET would
  have; whatever the application yields is dropped);
* ``Content-Length`` when the application declared one: more bytes than declared are cut,
  fewer leave the connection unusable (the driver closes it);
* chunked on HTTP/1.1 otherwise;
* close-delimited on HTTP/1.0 otherwise.

Hop-by-hop fields from the application are not passed on; ``Connection: close`` from it
is honoured.  Header names and values are validated (token names, no CR/LF/NUL, latin-1)
and a violation raises :class:`ValueError`, which the gateway turns into a 500.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from http import HTTPStatus

from .errors import REASONS

NO_BODY, LENGTH, CHUNKED, CLOSE = range(4)

_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_RE = re.compile(r"([1-9][0-9][0-9]) ([^\x00-\x08\x0a-\x1f\x7f]*)")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "trailers",
                         "transfer-encoding", "upgrade"})

_date_cache: list = [0, b""]
_plans: dict[tuple, tuple] = {}  # (request kind, status, *headers) -> _plan() result
# Header names already checked to be tokens -> their lower case.  A response whose values
# differ each time (an ETag, a cookie, a length) misses _plans, and is then re-checked
# value by value only: its names repeat.
_checked_names: dict[str, str] = {}
_checked_statuses: dict[str, tuple[int, bytes]] = {}  # status line -> code, bytes


def error_response(status: int, detail: str | None = None, *, close: bool = False
                   ) -> tuple[str, list[tuple[str, str]], bytes]:
    """A plain-text error reply: its status line, header fields and body.

    The body is one line, ``"<code> <detail>"`` (the reason phrase without a detail).
    ``close`` adds ``Connection: close``, for an error after which the request's framing
    cannot be trusted.  The one builder of error replies for the connection, the WSGI
    gateway and the native layer.
    """
    try:
        reason = REASONS.get(status) or HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body = f"{status} {detail or reason}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    return f"{status} {reason}", headers, body


def http_date() -> bytes:
    """The current time as an IMF-fixdate, recomputed at most once a second."""
    now = time.time()
    if not _date_cache[0] <= now < _date_cache[0] + 1.0:
        second = int(now)
        _date_cache[0] = second
        _date_cache[1] = formatdate(second, usegmt=True).encode("ascii")
    return _date_cache[1]


def _check_headers(status: str, headers: list[tuple[str, str]]
                   ) -> tuple[int, bytes, bytes, int | None, bool, bool]:
    """Validate an application's status and headers once.

    Returns the code, the status line bytes, the encoded fields to send, the declared
    Content-Length, whether the application asked to close, and whether it set Date.
    """
    checked = _checked_statuses.get(status)
    if checked is None:
        checked = parse_status(status), status.encode("latin-1")
        if len(_checked_statuses) < 256:
            _checked_statuses[status] = checked
    code, status_bytes = checked
    parts = []
    append = parts.append
    content_length = None
    app_closes = has_date = False
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            raise ValueError(f"a response header must be a (name, value) tuple: {pair!r}")
        name, value = pair
        lname = _checked_names.get(name) if type(name) is str else None
        if lname is None:
            if type(name) is not str or not _TOKEN_RE.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            lname = name.lower()
            if len(_checked_names) < 1024:
                _checked_names[name] = lname
        if type(value) is not str:
            raise ValueError(f"header {name!r} has a value that is not a str: {value!r}")
        if not value.isprintable() and _BAD_VALUE_RE.search(value):  # CTLs are unprintable
            raise ValueError(f"invalid character in the value of header {name!r}")
        if lname == "content-length":
            value = value.strip()
            if not value.isdigit() or not value.isascii() or (
                    content_length is not None and int(value) != content_length):
                raise ValueError(f"invalid Content-Length {value!r}")
            if content_length is not None:
                continue
            content_length = int(value)
            if code < 200 or code == 204:
                continue  # these responses carry no length
        elif lname in _HOP_BY_HOP:
            if lname == "connection" and "close" in (t.strip().lower() for t in value.split(",")):
                app_closes = True
            continue  # hop-by-hop fields are the server's business
        elif lname == "date":
            has_date = True
        append(f"{name}: {value}\r\n")
    try:
        fields = "".join(parts).encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a response header is not latin-1") from None
    return code, status_bytes, fields, content_length, app_closes, has_date


def parse_status(status: str) -> int:
    """The code of a WSGI status line such as ``"200 OK"``; ValueError when malformed."""
    if not isinstance(status, str):
        raise ValueError(f"status must be a str, not {type(status).__name__}")
    m = _STATUS_RE.fullmatch(status)
    if m is None:
        raise ValueError(f"invalid status line {status!r}")
    try:
        status.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"status line is not latin-1: {status!r}") from None
    return int(m.group(1))


def _plan(is_head: bool, request_version: str, keep_alive: bool, status: str,
          headers: list[tuple[str, str]], server_header: bytes | None,
          body_length: int | None) -> tuple:
    """Everything about a response head except the date, worked out once per distinct
    (request kind, status, headers): code, mode, content length, keep-alive, and the head
    bytes before and after the Date value (``after`` is None when the app set Date)."""
    code, status_bytes, fields, content_length, app_closes, has_date = \
        _check_headers(status, headers)
    if app_closes:
        keep_alive = False
    lines = [b"HTTP/1.1 ", status_bytes, b"\r\n"]
    if not has_date:
        lines.append(b"Date: ")
        before = b"".join(lines)
        lines = [b"\r\n"]
    if server_header:
        lines += [b"Server: ", server_header, b"\r\n"]
    lines.append(fields)
    if content_length is None and body_length is not None and code >= 200 \
            and code not in (204, 304) and not is_head:
        content_length = body_length  # the whole body is known: no need for chunks
        lines.append(b"Content-Length: %d\r\n" % body_length)
    if is_head or code < 200 or code in (204, 304):
        mode = NO_BODY
    elif content_length is not None:
        mode = LENGTH
    elif request_version == "HTTP/1.1":
        mode = CHUNKED
        lines.append(b"Transfer-Encoding: chunked\r\n")
    else:
        mode = CLOSE
        keep_alive = False
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    elif request_version == "HTTP/1.0":
        lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    if has_date:
        return code, mode, content_length, keep_alive, b"".join(lines), None
    return code, mode, content_length, keep_alive, before, b"".join(lines)


def frame_head(method: str, request_version: str, keep_alive: bool, status: str,
               headers: list[tuple[str, str]], server_header: bytes | None,
               body_length: int | None) -> tuple[int, int, int | None, bool, bytes]:
    """How a response is framed: the code, the mode, the Content-Length, whether the
    connection may be kept alive, and the head bytes.  ``body_length`` is the length of
    the whole body when the caller holds it (it adds a Content-Length the application did
    not give), else None.  The flat path calls this directly for a body at hand;
    :class:`ResponseFramer` is built on it.  Raises :class:`ValueError` for invalid
    statuses and headers."""
    key = (status, method == "HEAD", request_version, keep_alive, body_length,
           server_header, *headers)
    plan = _plans.get(key)
    if plan is None:
        plan = _plan(method == "HEAD", request_version, keep_alive, status, headers,
                     server_header, body_length)
        if len(_plans) >= 512:
            _plans.clear()  # a rough bound: applications repeat a few header sets
        _plans[key] = plan
    code, mode, content_length, keep_alive, before, after = plan
    if after is not None:
        now = time.time()
        date = _date_cache[1] if _date_cache[0] <= now < _date_cache[0] + 1.0 \
            else http_date()
        before = before + date + after
    return code, mode, content_length, keep_alive, before


class ResponseFramer:
    """Frames one response.  Build it, read ``head``, then pass body data through
    :meth:`encode` and finish with :meth:`end`.

    ``body_length``, when the caller already holds the whole body, adds a
    Content-Length the application did not give.

    ``keep_alive`` says, after construction, whether the connection may carry another
    request after this response; ``mode`` is one of NO_BODY, LENGTH, CHUNKED, CLOSE.
    """

    __slots__ = ("mode", "keep_alive", "head", "content_length", "sent", "status", "truncated")

    def __init__(self, method: str, request_version: str, keep_alive: bool, status: str,
                 headers: list[tuple[str, str]], server_header: bytes | None,
                 body_length: int | None = None) -> None:
        (self.status, self.mode, self.content_length, self.keep_alive,
         self.head) = frame_head(method, request_version, keep_alive, status, headers,
                                 server_header, body_length)
        self.sent = 0
        self.truncated = False

    def encode(self, data: bytes) -> bytes:
        """The wire bytes for a piece of body ``data`` (possibly empty)."""
        mode = self.mode
        if mode == CHUNKED:
            if not data:
                return b""
            self.sent += len(data)
            return b"%x\r\n%b\r\n" % (len(data), data)
        if mode == LENGTH:
            room = self.content_length - self.sent  # type: ignore[operator]
            if len(data) > room:
                data = data[:room]
                self.truncated = True
            self.sent += len(data)
            return data
        if mode == CLOSE:
            self.sent += len(data)
            return data
        return b""

    def allowance(self, count: int) -> int:
        """How many of ``count`` body bytes (of a file, say) may still go on the wire."""
        if self.mode == NO_BODY:
            return 0
        if self.mode == LENGTH:
            room = self.content_length - self.sent  # type: ignore[operator]
            if count > room:
                self.truncated = True
                return max(0, room)
        return count

    def end(self) -> bytes:
        """The bytes that close the body (the last chunk for chunked)."""
        return b"0\r\n\r\n" if self.mode == CHUNKED else b""

    @property
    def short(self) -> bool:
        """True when fewer bytes were sent than the declared Content-Length."""
        return self.mode == LENGTH and self.sent < self.content_length  # type: ignore[operator]
