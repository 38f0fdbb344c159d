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

Every response is checked and framed afresh: nothing is remembered from one response to the
next (but the Date value, which is the clock's).  The common head -- a standard status line,
fields under well-known names or plain tokens, printable values, at most one all-digit
Content-Length -- takes one pass with a few operations per field; anything else (hop-by-hop
fields, Date, a padded or repeated Content-Length, control characters, an odd status line,
invalid input) goes through :func:`_general_fields`, which holds every rule.
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

# The fields the server acts on itself, by lower-case name.
_SPECIAL_NAMES = _HOP_BY_HOP | {"content-length", "date"}
# Well-known field names, as applications usually spell them: valid tokens that are none of
# the special fields.  A fixed table, the same in every worker; any other name is checked
# by _plain_name().
_PLAIN_NAMES = frozenset(spelling for name in (
    "Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods", "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers", "Access-Control-Max-Age", "Age", "Allow", "Alt-Svc",
    "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
    "Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type",
    "Cross-Origin-Embedder-Policy", "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy", "ETag", "Expires", "Last-Modified", "Link", "Location",
    "Permissions-Policy", "Pragma", "Referrer-Policy", "Retry-After", "Server-Timing",
    "Set-Cookie", "Strict-Transport-Security", "Vary", "WWW-Authenticate",
    "X-Content-Type-Options", "X-Frame-Options", "X-Request-Id", "X-XSS-Protection",
) for spelling in (name, name.lower()))
_LENGTH_NAMES = frozenset({"Content-Length", "content-length", "CONTENT-LENGTH"})


def _status_line(code: int, status: str) -> tuple[int, bytes, bool, bool]:
    """A status line's code, its bytes on the wire, whether its responses have no body
    (1xx, 204, 304), and whether they carry no Content-Length (1xx, 204)."""
    return (code, b"HTTP/1.1 %b\r\n" % status.encode("latin-1"),
            code < 200 or code in (204, 304), code < 200 or code == 204)


# The standard status lines, worked out at import; others are parsed per response.
_STATUS_LINES = {line: _status_line(code, line) for line, code in
                 [(f"{s.value} {s.phrase}", s.value) for s in HTTPStatus]
                 + [(f"{code} {reason}", code) for code, reason in REASONS.items()]}

# The Date value and the start of its second (a float: it is compared with time.time()).
_date_cache: list = [0.0, b""]


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
    if not 0.0 <= now - _date_cache[0] < 1.0:
        second = int(now)
        _date_cache[0] = float(second)
        _date_cache[1] = formatdate(second, usegmt=True).encode("ascii")
    return _date_cache[1]


def frame_head(method: str, request_version: str, keep_alive: bool, status: str,
               headers: list[tuple[str, str]], server_header: bytes | None,
               body_length: int | None) -> tuple[int, int, int | None, bool, bytes]:
    """How a response is framed: the code, the mode, the Content-Length, whether the
    connection may be kept alive, and the head bytes.  ``body_length`` is the length of
    the whole body when the caller holds it (it adds a Content-Length the application did
    not give), else None.  ``HTTPConnection.respond`` calls this directly for a body at hand;
    :class:`ResponseFramer` is built on it.  Raises :class:`ValueError` for invalid
    statuses and headers."""
    # The common head in one pass; the first field that is not plain (see the module
    # docstring), or a status line not in _STATUS_LINES, hands the whole head to
    # _general_fields().  Exact types are checked because f-strings would format anything.
    text = ""
    length = None
    line = None
    try:
        for pair in headers:
            if type(pair) is not tuple:
                break
            name, value = pair  # ValueError unless a pair
            if type(name) is not str or type(value) is not str:
                break
            if name in _PLAIN_NAMES:
                if not value.isprintable():
                    break
            elif name in _LENGTH_NAMES:
                if length is not None:
                    break
                if body_length is not None and value == f"{body_length}":
                    length = body_length  # the length of the body at hand: no need to parse
                elif value.isascii() and value.isdigit():
                    length = int(value)
                else:
                    break
            elif not value.isprintable() or not _plain_name(name):
                break
            text += f"{name}: {value}\r\n"
        else:
            line = _STATUS_LINES[status]
    except (KeyError, TypeError, ValueError):  # another status, a pair not of two...
        pass
    if line is None or length is not None and line[3]:
        line, text, length, closes, has_date = _general_fields(status, headers)
        if closes:
            keep_alive = False
    else:
        has_date = False
    code, status_line, no_body, _ = line
    if no_body or method == "HEAD":
        mode = NO_BODY
    elif length is not None:
        mode = LENGTH
    elif body_length is not None:
        mode = LENGTH
        length = body_length
        text += f"Content-Length: {body_length}\r\n"  # the whole body is known: no chunks
    elif request_version == "HTTP/1.1":
        mode = CHUNKED
        text += "Transfer-Encoding: chunked\r\n"
    else:
        mode = CLOSE
        keep_alive = False
    if not keep_alive:
        text += "Connection: close\r\n"
    elif request_version == "HTTP/1.0":
        text += "Connection: keep-alive\r\n"
    try:
        fields = text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a response header is not latin-1") from None
    if has_date:
        head = b"".join((status_line, b"Server: " if server_header else b"",
                         server_header or b"", b"\r\n" if server_header else b"", fields, b"\r\n"))
    else:
        # (http_date() itself, written out: float arithmetic costs less than int().)
        date = _date_cache[1] if 0.0 <= time.time() - _date_cache[0] < 1.0 else http_date()
        if server_header:
            head = b"".join((status_line, b"Date: ", date, b"\r\nServer: ", server_header,
                             b"\r\n", fields, b"\r\n"))
        else:
            head = b"".join((status_line, b"Date: ", date, b"\r\n", fields, b"\r\n"))
    return code, mode, length, keep_alive, head


def _plain_name(name: str) -> bool:
    """Whether a name outside _PLAIN_NAMES is a token that is no special field."""
    return bool(name.isascii() and (name.replace("-", "").isalnum() or _TOKEN_RE.fullmatch(name))
                and name.lower() not in _SPECIAL_NAMES)


def _general_fields(status: str, headers: list[tuple[str, str]]
                    ) -> tuple[tuple[int, bytes, bool, bool], str, int | None, bool, bool]:
    """Every rule for a status line and the application's fields, one field at a time.

    Returns the status line as :func:`_status_line` describes it, the fields to send (as
    text, each ending in CRLF), the declared Content-Length, whether the application asked
    to close, and whether it set Date.  Raises ValueError, saying why, for anything invalid.
    """
    code = parse_status(status)
    line = _status_line(code, status)
    parts = []
    length = None
    closes = has_date = False
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            raise ValueError(f"a response header must be a (name, value) tuple: {pair!r}")
        name, value = pair
        if type(name) is not str or not _TOKEN_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if type(value) is not str:
            raise ValueError(f"header {name!r} has a value that is not a str: {value!r}")
        if _BAD_VALUE_RE.search(value):
            raise ValueError(f"invalid character in the value of header {name!r}")
        lname = name.lower()
        if lname == "content-length":
            value = value.strip()
            if not value.isdigit() or not value.isascii() or (
                    length is not None and int(value) != length):
                raise ValueError(f"invalid Content-Length {value!r}")
            if length is not None:
                continue  # an equal repetition is sent once
            length = int(value)
            if code < 200 or code == 204:
                continue  # these responses carry no length
        elif lname in _HOP_BY_HOP:
            if lname == "connection" and "close" in (t.strip().lower() for t in value.split(",")):
                closes = True
            continue  # hop-by-hop fields are the server's business
        elif lname == "date":
            has_date = True
        parts.append(f"{name}: {value}\r\n")
    return line, "".join(parts), length, closes, has_date


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


class ResponseFramer:
    """Frames one response.  Build it, read ``head``, then pass body data through
    :meth:`encode` (or, for chunked framing, :meth:`chunk`) and finish with :meth:`end`.

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
        """The wire bytes for a piece of body ``data`` (possibly empty), in one buffer."""
        mode = self.mode
        if mode == LENGTH:
            sent = self.sent + len(data)
            if sent > self.content_length:  # type: ignore[operator]
                data = data[:self.content_length - self.sent]  # type: ignore[operator]
                self.truncated = True
                sent = self.content_length  # type: ignore[assignment]
            self.sent = sent
            return data
        if mode == CHUNKED:
            return b"".join(self.chunk(data))
        if mode == CLOSE:
            self.sent += len(data)
            return data
        return b""

    def chunk(self, data: bytes) -> tuple[bytes, ...]:
        """For chunked framing: the wire bytes for ``data`` as buffers to send one after
        another -- its size line, ``data`` itself (so a large piece need not be copied)
        and CRLF; none for empty data, which would end the body."""
        if not data:
            return ()
        self.sent += len(data)
        return b"%x\r\n" % len(data), data, b"\r\n"

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
