"""A strict, sans-I/O HTTP/1.1 request parser (RFC 9112, RFC 9110).

Bytes go in with :meth:`RequestParser.feed`; :meth:`RequestParser.next_event` gives, in
this order for each request:

    RequestHead  ->  bytes (body data, zero or more)  ->  END_OF_MESSAGE

and :data:`NEED_DATA` whenever more input is needed.  Body data is ``bytes`` or, for a
body that came in the same read as its head, a ``memoryview`` of the bytes fed (not
copied; valid for as long as the caller keeps it).  After ``END_OF_MESSAGE`` the parser
holds back (returns ``NEED_DATA``, keeping pipelined bytes buffered) until the driver calls
:meth:`RequestParser.start_next_request`, once the response has been sent.

Rules:

* Every deviation from the grammar raises :class:`ProtocolError` with the status to
  answer (400, 413, 414, 417, 431, 501, 505); the parser is then dead, and the driver
  must close the connection: after a framing error no later request is read.
* Lines end in CRLF only; a bare CR or LF anywhere in the head is an error.
* Limits (:class:`HTTPLimits`) are checked while reading, before anything is buffered
  past them.
* The answer depends on the bytes alone: not on how they were split into reads (with
  several faults, the one the shortest prefix shows is reported), and not on what
  other parsers saw (the module keeps no cache of checked names or values).

docs/conformance.md lists every refusal with its status and RFC clause.
"""

from __future__ import annotations

import re

from .errors import ProtocolError
from .limits import HTTPLimits

NEED_DATA = object()
END_OF_MESSAGE = object()

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
# RFC 9110 5.1, 5.5: field-name ":" OWS field-value OWS; the value (with its trailing
# OWS, stripped afterwards) holds no CTL but HTAB.  One fullmatch per field line.
_FIELD_LINE = re.compile(rf"({_TOKEN}):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)")
_TOKEN_RE = re.compile(_TOKEN)
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")
# The usual Host: a reg-name with an optional port (a part of what _HOST accepts).  The
# quantifiers are possessive, as they can be (no ":" in a reg-name), which spares the
# matcher the state for backtracking.
_PLAIN_HOST_VALUE = r"[A-Za-z0-9\-._~!$&'()*+,;=%]*+:?+[0-9]*+"
_ABSOLUTE_TARGET = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^#]*)")
# RFC 9112 7.1.1: chunk-size = 1*HEXDIG, then
#   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# with a token for the name and a token or quoted-string (RFC 9110 5.6.4) for the value.
# Whitespace is only allowed around ";" and "=": "5 " and "5;a " are refused.
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_BTOKEN = _TOKEN.encode()
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[ \t]*%s(?:[ \t]*=[ \t]*(?:%s|%s))?)*"
    % (_BTOKEN, _BTOKEN, _QUOTED_STRING))

(_HEAD, _BODY_LENGTH, _CHUNK_SIZE_LINE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _END, _DONE,
 _DEAD) = range(9)
_KNOWN_CODINGS = frozenset({"chunked"})
_COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The plainly clean head (see RequestParser._read_clean), the whole of it to its blank
# line in one match: a part of what the strict reading accepts, which that reading would
# give the same fields for.  Printable ASCII only; values neither start nor end with
# whitespace once the spaces after the colon are taken (the strict reading strips them).
# A Host field whose value is a plain Host is captured by the first alternative (the
# last such field, should there be several: the field scan refuses those heads anyway).
# Possessive quantifiers, as they can be: nothing here needs backtracking.
_CLEAN_HEAD = re.compile(
    rf"({'|'.join(sorted(_COMMON_METHODS))}) (/[!-~]*+) HTTP/1\.1\r\n"
    rf"((?:(?i:host): *+({_PLAIN_HOST_VALUE})\r\n"
    r"|[!#$%&'*+.^_`|~0-9A-Za-z-]++: *+(?:[!-~][ -~]*+(?<! ))?\r\n)*+)\r\n")
# One field line of a clean head's fields: (name, value) as they are to be kept.
_CLEAN_FIELD = re.compile(r"([^:]++): *+([^\r]*+)\r\n")
#: fields the parser reads itself (Host is read apart); lower-case names
_FRAMING_FIELDS = frozenset({"content-length", "transfer-encoding", "connection", "expect",
                             "content-type", "authorization", "proxy-authorization"})
#: fields that may appear once only: a second line, even with the same value, is refused
#: (with Host), because two parties could each pick a different one
_SINGLETON_FIELDS = frozenset({"content-length", "content-type", "authorization",
                               "proxy-authorization"})
#: the usual spellings of field names that are neither Host nor in _FRAMING_FIELDS (a
#: fixed table: _scan_fields passes over them without lower-casing them)
_UNSCANNED_FIELDS = frozenset(spelling for name in (
    "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Cookie",
    "DNT", "If-Modified-Since", "If-None-Match", "Origin", "Pragma", "Priority", "Referer",
    "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
    "Upgrade-Insecure-Requests", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-IP",
    "X-Requested-With",
) for spelling in (name, name.lower()))
#: fields refused in a trailer section (RFC 9110 6.5.1): framing, routing, connection
#: management, request modifiers, authentication and content metadata.  Trailers are
#: discarded, but a component that merges them into the header section must not get these.
_FORBIDDEN_TRAILERS = frozenset({
    "content-length", "transfer-encoding", "host", "te", "trailer", "connection",
    "keep-alive", "proxy-connection", "upgrade", "expect", "content-type",
    "content-encoding", "content-range", "range", "authorization", "proxy-authorization",
    "cookie", "max-forwards", "cache-control", "pragma", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "if-range", "forwarded", "x-forwarded-for",
    "x-forwarded-host", "x-forwarded-proto", "x-real-ip"})


def _first_bare(buf: bytes, stop: int) -> tuple[int, int, int, str] | None:
    """The first bare LF or bare CR in ``buf[:stop]`` as (length of the shortest prefix
    that shows it, 2 or 3, 400, detail), or None.  A CR shows as bare only once the next
    byte is there and is not LF."""
    found = None
    lf = buf.find(b"\n", 0, stop)
    while lf > 0 and buf[lf - 1] == 13:
        lf = buf.find(b"\n", lf + 1, stop)
    if lf >= 0:
        found = (lf + 1, 2, 400, "bare LF")
    cr = buf.find(b"\r", 0, stop - 1)
    while cr >= 0 and buf[cr + 1] == 10:
        cr = buf.find(b"\r", cr + 1, stop - 1)
    if cr >= 0 and (found is None or cr + 2 < found[0]):
        found = (cr + 2, 3, 400, "bare CR")
    return found


class RequestHead:
    """The request line and header fields of one request, plus what framing needs.

    ``headers`` keeps each field as received, as latin-1 ``(name, value)`` pairs.
    ``path`` and ``query`` split the target (origin- or absolute-form); ``host`` is the
    authority to use (from an absolute-form target, else the Host field).
    """

    __slots__ = ("method", "target", "path", "query", "version", "headers",
                 "keep_alive", "expect_continue", "content_length", "chunked", "host")

    method: str
    target: str
    path: str
    query: str
    version: str
    headers: list[tuple[str, str]]
    keep_alive: bool
    expect_continue: bool
    content_length: int | None
    chunked: bool
    host: str | None

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of the field ``name`` (case-insensitive)."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


def _scan_fields(headers: list[tuple[str, str]]
                 ) -> tuple[str | None, dict[str, str] | None, str | None]:
    """The Host value and the framing fields of a head's ``headers`` (by lower-case name,
    combined as RFC 9110 5.3 says; None when there are none), and the name of a repeated
    Host or singleton framing field, which makes the head invalid (None: there is none)."""
    host = None
    special = None
    for name, value in headers:
        if name in _UNSCANNED_FIELDS:
            continue
        lname = name.lower()
        if lname == "host":
            if host is not None:
                return host, special, "Host"
            host = value
        elif lname in _FRAMING_FIELDS:
            if special is None:
                special = {}
            previous = special.get(lname)
            if previous is None:
                special[lname] = value
            elif lname in _SINGLETON_FIELDS:
                return host, special, name
            else:
                special[lname] = previous + "," + value
    return host, special, None


class RequestParser:
    """Turns bytes into request events; see the module docstring for the order."""

    __slots__ = ("limits", "_buffer", "_state", "_remaining", "_body_received",
                 "_trailer_bytes", "__weakref__")

    def __init__(self, limits: HTTPLimits | None = None) -> None:
        self.limits = limits or HTTPLimits()
        self._buffer = b""
        self._state = _HEAD
        self._remaining = 0
        self._body_received = 0
        self._trailer_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet turned into events."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        if data:
            buf = self._buffer
            if not buf:
                self._buffer = data
            elif type(buf) is bytes:
                self._buffer = buf + data
            else:  # a view of body bytes (see _keep_rest)
                self._buffer = b"".join((buf, data))

    def start_next_request(self) -> int:
        """Allow the next pipelined request to be parsed (after the response is sent);
        returns :attr:`buffered`, the bytes already received for it."""
        if self._state == _DONE:
            self._state = _HEAD
        return len(self._buffer)

    def take_end(self) -> bool:
        """Consume the END_OF_MESSAGE that follows a head without a body, if that is
        what comes next (a shortcut past one :meth:`next_event` call); True if it did."""
        if self._state == _END:
            self._state = _DONE
            return True
        return False

    def take_rest(self) -> bytes:
        """Take the bytes buffered after the request just read, leaving none: after a
        protocol switch (a WebSocket's ``101``) they are the new protocol's first input,
        not HTTP.  The parser stays at that request's end of message."""
        rest = bytes(self._buffer)
        self._buffer = b""
        return rest

    def next_event(self) -> object:
        state = self._state
        if state == _HEAD:
            return self._parse_head()
        if state == _BODY_LENGTH:
            return self._read_length_body()
        if state == _END:
            self._state = _DONE
            return END_OF_MESSAGE
        if state == _DONE:
            return NEED_DATA
        if state == _DEAD:
            raise ProtocolError(400, "the parser stopped after an earlier error")
        return self._read_chunked_body()

    def _fail(self, status: int, detail: str) -> ProtocolError:
        self._state = _DEAD
        return ProtocolError(status, detail)

    # -- head ------------------------------------------------------------------------------

    def _parse_head(self) -> object:
        """The common request head, read in one pass (see :meth:`_read_clean`); every
        other head -- incomplete, near a limit, unusual or wrong -- goes to
        :meth:`_parse_head_strict`, which reads any head and gives the answer (every
        refusal comes from there)."""
        buf = self._buffer
        end = buf.find(b"\r\n\r\n")
        head = self._read_clean(buf[:end + 4].decode("latin-1")) if end > 0 else None
        if head is None:
            return self._parse_head_strict()
        headers = head.headers
        host, special, repeated = _scan_fields(headers)
        if repeated is not None:
            return self._parse_head_strict()
        self._finish_head(head, headers, host, special)
        self._keep_rest(buf, end + 4)
        return head

    def take_clean(self, data: bytes) -> RequestHead | None:
        """The head of ``data`` when nothing is buffered and ``data`` is the whole of one
        plainly clean request without a body (no framing, Connection, Expect or other
        field the parser reads itself, and a Host of the usual characters): the head
        :meth:`feed` and :meth:`next_event` would give, already at its end of message.

        The parser is then left as it is between requests (nothing buffered), so the
        caller answers the request and carries on.  None for anything else, consuming
        nothing: the caller then feeds ``data`` as usual.  Refuses nothing itself.
        """
        if self._buffer or self._state != _HEAD or not data.endswith(b"\r\n\r\n"):
            return None
        # (A blank line before the end leaves the clean reading without a match.)
        head = self._read_clean(data.decode("latin-1"))
        if head is None or head.host is None:
            return None  # (a Host of other characters, or none: for _finish_head)
        _, special, repeated = _scan_fields(head.headers)
        if special is not None or repeated is not None:
            return None
        head.keep_alive = True
        head.content_length = None
        head.chunked = False
        head.expect_continue = False
        return head

    def _read_clean(self, text: str) -> RequestHead | None:
        """The head that is the whole of ``text`` (the latin-1 decoding of its bytes, its
        blank line included) when it is plainly clean, read by one regular expression;
        else None.

        Plainly clean: shorter than every size limit, printable ASCII but its CRLF line
        ends, a request line ``METHOD /origin-form HTTP/1.1`` with a common method,
        and ``name: value`` field lines with token names and values without trailing
        whitespace.  Returns the head with its request line and ``headers`` set, and
        ``host`` the value of its Host field if that is of the usual characters (see
        ``_PLAIN_HOST_VALUE``; else None), for the Host and framing rules to follow.
        This reading accepts a part of what the strict one accepts, with the same
        fields, and refuses nothing itself.
        """
        limits = self.limits
        end = len(text) - 4
        if end >= limits.max_request_line or end + 4 > limits.max_head_size \
                or end > limits.max_header_field_size:
            return None
        match = _CLEAN_HEAD.fullmatch(text)
        if match is None:
            return None
        method, target, fields, host = match.groups()
        headers = _CLEAN_FIELD.findall(fields)
        if len(headers) > limits.max_header_count:
            return None
        head = RequestHead()
        head.method = method
        head.target = target
        head.version = "HTTP/1.1"
        head.host = host
        head.headers = headers
        head.path, _, head.query = target.partition("?")
        return head

    def _parse_head_strict(self) -> object:
        """Any request head, complete or not: read line by line and held to every rule,
        refusing with the status and detail docs/conformance.md gives."""
        buf = self._buffer
        if not buf:
            return NEED_DATA
        if buf[:1] in (b"\r", b"\n"):
            # RFC 9112 2.2: ignore empty lines before the request line.
            stripped = buf.lstrip(b"\r\n")
            prefix = buf[:len(buf) - len(stripped)]
            if not stripped and prefix.endswith(b"\r"):
                # keep a final CR: its LF may come with the next read
                prefix, stripped = prefix[:-1], b"\r"
            if prefix.replace(b"\r\n", b""):
                raise self._fail(400, "bare CR or LF before the request line")
            self._buffer = buf = stripped
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._check_incomplete_head(buf, len(buf))
            return NEED_DATA
        limits = self.limits
        crlf = buf.count(b"\r\n", 0, end)
        if end >= limits.max_request_line or end + 4 > limits.max_head_size \
                or buf.count(b"\r", 0, end) != crlf or buf.count(b"\n", 0, end) != crlf:
            # What a reader fed fewer bytes at a time would have refused already
            # (414, 431, a bare CR or LF) is refused the same way here.
            self._check_incomplete_head(buf, end + 3)
        text = buf[:end].decode("latin-1")
        lines = text.split("\r\n")
        head = self._request_line(lines[0])
        if len(lines) - 1 > limits.max_header_count:
            raise self._fail(431, "too many header fields")
        headers = []
        append = headers.append
        field_line = _FIELD_LINE.fullmatch
        max_field = limits.max_header_field_size
        for line in lines[1:]:
            if len(line) > max_field:
                raise self._fail(431, "header field too large")
            m = field_line(line)
            if m is None:
                raise self._fail(400, self._field_error(line))
            name, value = m.groups()
            append((name, value.rstrip(" \t")))
        self._finish_head(head, headers, *self._host_and_framing(headers))
        self._keep_rest(buf, end + 4)
        return head

    def _request_line(self, request_line: str) -> RequestHead:
        """The head of ``request_line``: the common ``METHOD /origin HTTP/1.1`` checked
        without the regular expression, every other line by :meth:`_parse_request_line`."""
        method, _, rest = request_line.partition(" ")
        target, _, version = rest.partition(" ")
        if method in _COMMON_METHODS and version == "HTTP/1.1" and target[:1] == "/" \
                and target.isascii() and target.isprintable() and " " not in target:
            head = RequestHead()
            head.method = method
            head.target = target
            head.version = version
            head.host = None
            head.path, _, head.query = target.partition("?")
            return head
        return self._parse_request_line(request_line)

    def _host_and_framing(self, headers: list[tuple[str, str]]
                          ) -> tuple[str | None, dict[str, str] | None]:
        """The Host value and the framing fields of a head's ``headers`` (combined as RFC
        9110 5.3 says; None when there are none), for :meth:`_finish_head`; 400 for a
        repeated Host or singleton framing field."""
        host, special, repeated = _scan_fields(headers)
        if repeated is not None:
            raise self._fail(400, f"more than one {repeated} field")
        return host, special

    def _keep_rest(self, buf: bytes, start: int) -> None:
        """Keep the bytes after a head.  A body of known length that follows is kept as
        a view of them, handed out as such: the usual body, received with its head, is
        then not copied before the spool joins it."""
        if self._state == _BODY_LENGTH and len(buf) > start:
            self._buffer = memoryview(buf)[start:]
        else:
            self._buffer = buf[start:]


    def _finish_head(self, head: RequestHead, headers: list[tuple[str, str]],
                     host: str | None, special: dict[str, str] | None) -> RequestHead:
        """Apply the Host, framing, Connection and Expect rules to a head whose fields
        are read (``special``: the framing fields, combined; None when there are none)."""
        head.headers = headers
        if host is not None:
            if _HOST.fullmatch(host) is None:
                raise self._fail(400, "malformed Host field")
            if head.host is None:
                head.host = host
        elif head.version == "HTTP/1.1":
            raise self._fail(400, "HTTP/1.1 request without a Host field")
        if special is None:
            head.keep_alive = head.version == "HTTP/1.1"
            head.content_length = None
            head.chunked = False
            head.expect_continue = False
            self._state = _END
        else:
            get = special.get
            self._apply_connection(head, get("connection"))
            self._apply_framing(head, get("content-length"), get("transfer-encoding"))
            self._apply_expect(head, get("expect"))
        return head
    def _check_incomplete_head(self, buf: bytes, stop: int) -> None:
        """Refuse ``buf[:stop]``, a head without its final CRLF yet, if it is already
        wrong: a request line over the limit (414), a head at the size limit (431), a bare
        LF or a bare CR (400).

        The error is the one the shortest wrong prefix shows (at equal length, in that
        order), so the answer does not depend on how the bytes were split into reads.
        """
        limits = self.limits
        limit = limits.max_request_line
        found = []
        line_end = buf.find(b"\r\n", 0, stop)
        if line_end < 0 or line_end > limit:
            # too long once more than ``limit`` bytes are there, a final CR not counted
            shown = limit + 1 if buf[limit:limit + 1] != b"\r" else limit + 2
            found.append((shown, 0, 414, "request line too long"))
        if stop >= limits.max_head_size:
            found.append((limits.max_head_size, 1, 431, "request head too large"))
        bare = _first_bare(buf, stop)
        if bare is not None:
            found.append((*bare[:3], bare[3] + " in the request head"))
        shown, _, status, detail = min(found, default=(stop + 1, 0, 0, ""))
        if shown <= stop:
            raise self._fail(status, detail)

    def _check_incomplete_trailer(self, buf: bytes, stop: int) -> None:
        """Like :meth:`_check_incomplete_head` for ``buf[:stop]``, the start of a trailer
        line without its CRLF: the section over the head size limit (431) or a bare CR
        or LF (400), whichever the shortest prefix shows."""
        found = []
        too_large = self.limits.max_head_size - self._trailer_bytes + 1
        if too_large <= stop:
            found.append((too_large, 1, 431, "trailer section too large"))
        bare = _first_bare(buf, stop)
        if bare is not None:
            found.append((*bare[:3], bare[3] + " in the trailer section"))
        if found:
            _, _, status, detail = min(found)
            raise self._fail(status, detail)

    @staticmethod
    def _field_error(line: str) -> str:
        if line[:1] in (" ", "\t"):
            return "obsolete line folding is not accepted"
        if "\r" in line or "\n" in line:
            return "bare CR or LF in a header field"
        name, colon, _ = line.partition(":")
        if not colon:
            return "header field without a colon"
        if name != name.rstrip(" \t"):
            return "whitespace before the colon in a header field"
        if _TOKEN_RE.fullmatch(name) is None:
            return "header field name is not a token"
        return "control character in a header field value"

    @staticmethod
    def _chunk_line_error(line: bytes) -> str:
        size = line.split(b";", 1)[0]
        digits = size.rstrip(b" \t")
        if digits and len(digits) > 15 and re.fullmatch(rb"[0-9A-Fa-f]+", digits):
            return "chunk size overflows"
        if size != digits and b";" not in line:
            return "whitespace after the chunk size"
        return "malformed chunk size line"

    def _parse_request_line(self, line: str) -> RequestHead:
        """Any request line but the common kind :meth:`_parse_head` reads itself."""
        m = _REQUEST_LINE.fullmatch(line)
        if m is None:
            if "\r" in line or "\n" in line:
                raise self._fail(400, "bare CR or LF in the request line")
            parts = line.split(" ")
            if len(parts) == 3 and re.fullmatch(r"HTTP/[0-9]+\.[0-9]+", parts[2]) \
                    and not parts[2].startswith("HTTP/1."):
                raise self._fail(505, "HTTP version not supported")
            raise self._fail(400, "malformed request line")
        method, target, major, minor = m.groups()
        if major != "1":
            raise self._fail(505, "HTTP version not supported")
        head = RequestHead()
        head.method = method
        head.target = target
        head.version = "HTTP/1.0" if minor == "0" else "HTTP/1.1"
        head.host = None
        if method == "CONNECT" and target[0] == "/":
            # RFC 9112 3.2.3: the authority-form is only for CONNECT, and CONNECT takes
            # nothing else
            raise self._fail(400, "CONNECT without an authority-form target")
        if target[0] == "/":
            path, _, query = target.partition("?")
        elif target == "*":
            if method != "OPTIONS":
                raise self._fail(400, "asterisk-form target is only for OPTIONS")
            path, query = "*", ""
        elif method == "CONNECT":
            if not _HOST.fullmatch(target):
                raise self._fail(400, "malformed authority-form target")
            path, query = "", ""
            head.host = target
        else:
            am = _ABSOLUTE_TARGET.fullmatch(target)
            if am is None:
                raise self._fail(400, "malformed request target")
            scheme, authority, rest = am.groups()
            if scheme.lower() not in ("http", "https") or not authority or "@" in authority:
                raise self._fail(400, "unsupported absolute-form target")
            path, _, query = (rest or "/").partition("?")
            if not path.startswith("/"):
                path = "/" + path
            head.host = authority
        head.path = path
        head.query = query
        return head

    def _apply_connection(self, head: RequestHead, connection: str | None) -> None:
        if connection is None:
            head.keep_alive = head.version == "HTTP/1.1"
            return
        tokens = {t.strip().lower() for t in connection.split(",")}
        if "close" in tokens:
            head.keep_alive = False
        elif head.version == "HTTP/1.1":
            head.keep_alive = True
        else:
            head.keep_alive = "keep-alive" in tokens

    def _apply_framing(self, head: RequestHead, content_length: str | None,
                       transfer_encoding: str | None) -> None:
        head.content_length = None
        head.chunked = False
        self._body_received = 0
        if transfer_encoding is not None:
            if content_length is not None:
                raise self._fail(400, "both Content-Length and Transfer-Encoding")
            if head.version == "HTTP/1.0":
                raise self._fail(400, "Transfer-Encoding in an HTTP/1.0 request")
            codings = [c.strip().lower() for c in transfer_encoding.split(",")]
            if any(not re.fullmatch(_TOKEN, c) for c in codings):
                raise self._fail(400, "malformed Transfer-Encoding")
            unknown = [c for c in codings if c not in _KNOWN_CODINGS]
            if codings[-1] != "chunked":
                raise self._fail(400, "chunked is not the final transfer coding")
            if codings.count("chunked") > 1:
                raise self._fail(400, "chunked applied more than once")
            if unknown:
                raise self._fail(501, f"transfer coding {unknown[0]!r} not implemented")
            head.chunked = True
            self._state = _CHUNK_SIZE_LINE
            return
        if content_length is not None:
            # One field with one value: a list, even "5, 5", is refused (RFC 9110 8.6
            # lets a recipient reject it; accepting it is how two parties come to
            # disagree on the framing).
            value = content_length
            if not value.isdigit() or not value.isascii() or len(value) > 18:
                if "," in value:
                    raise self._fail(400, "a list in Content-Length")
                raise self._fail(400, "malformed Content-Length")
            length = int(value)
            max_body = self.limits.max_body_size
            if max_body and length > max_body:
                raise self._fail(413, "request body too large")
            head.content_length = length
            if length:
                self._remaining = length
                self._state = _BODY_LENGTH
                return
        self._state = _END

    def _apply_expect(self, head: RequestHead, expect: str | None) -> None:
        head.expect_continue = False
        if expect is None:
            return
        if expect.strip().lower() == "100-continue":
            head.expect_continue = head.version == "HTTP/1.1" and head.has_body
            return
        raise self._fail(417, "unsupported expectation")

    # -- body ------------------------------------------------------------------------------

    def _read_length_body(self) -> object:
        buf = self._buffer
        if not buf:
            return NEED_DATA
        remaining = self._remaining
        if len(buf) <= remaining:
            self._buffer = b""
            data = buf
        else:
            data = buf[:remaining]
            rest = buf[remaining:]
            self._buffer = rest if type(rest) is bytes else bytes(rest)  # a head next
        self._remaining = remaining - len(data)
        if self._remaining == 0:
            self._state = _END
        return data

    def _read_chunked_body(self) -> object:
        state = self._state
        limits = self.limits
        while True:
            buf = self._buffer
            if state == _CHUNK_SIZE_LINE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) - buf.endswith(b"\r") > limits.max_chunk_line:
                        raise self._fail(400, "chunk size line too long")
                    if b"\n" in buf or b"\r" in buf[:-1]:
                        raise self._fail(400, "bare CR or LF in a chunk size line")
                    return NEED_DATA
                line = buf[:end]
                if end > limits.max_chunk_line:
                    raise self._fail(400, "chunk size line too long")
                m = _CHUNK_LINE.fullmatch(line)
                if m is None:
                    raise self._fail(400, self._chunk_line_error(line))
                size = int(m.group(1), 16)
                self._buffer = buf[end + 2:]
                if size == 0:
                    state = self._state = _TRAILERS
                    self._trailer_bytes = 0
                    continue
                max_body = limits.max_body_size
                if max_body and self._body_received + size > max_body:
                    raise self._fail(413, "request body too large")
                self._body_received += size
                self._remaining = size
                state = self._state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if not buf:
                    return NEED_DATA
                remaining = self._remaining
                data = buf[:remaining]
                self._buffer = buf[len(data):]
                self._remaining = remaining - len(data)
                if self._remaining == 0:
                    self._state = _CHUNK_END
                return data
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    if buf and buf != b"\r":
                        raise self._fail(400, "chunk data not followed by CRLF")
                    return NEED_DATA
                if buf[:2] != b"\r\n":
                    raise self._fail(400, "chunk data not followed by CRLF")
                self._buffer = buf[2:]
                state = self._state = _CHUNK_SIZE_LINE
            elif state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    self._check_incomplete_trailer(buf, len(buf))
                    return NEED_DATA
                if end + self._trailer_bytes >= limits.max_head_size \
                        or b"\r" in buf[:end] or b"\n" in buf[:end]:
                    self._check_incomplete_trailer(buf, end + 1)
                line = buf[:end]
                self._buffer = buf[end + 2:]
                if not line:
                    self._state = _DONE
                    return END_OF_MESSAGE
                self._trailer_bytes += end + 2
                if self._trailer_bytes > limits.max_head_size:
                    raise self._fail(431, "trailer section too large")
                if end > limits.max_header_field_size:
                    raise self._fail(431, "trailer field too large")
                m = _FIELD_LINE.fullmatch(line.decode("latin-1"))
                if m is None:
                    raise self._fail(400, "in a trailer: " + self._field_error(
                        line.decode("latin-1")))
                if m.group(1).lower() in _FORBIDDEN_TRAILERS:
                    raise self._fail(400, f"{m.group(1)} is not allowed in a trailer")
            else:  # pragma: no cover - states are exhaustive
                raise self._fail(400, "parser in an unknown state")
