"""An optional request parser backend on ``httptools`` (llhttp, in C).

:class:`HttptoolsRequestParser` is a :class:`~wsgiloop.http.parser.RequestParser`: same
interface, same events in the same order, same statuses.  Only the request head goes
through llhttp, and only once it is complete; what llhttp hands back is then checked
in Python, and any head that is not plainly clean is read again by the pure-Python code
of the base class, which gives the answer (an event or a :class:`ProtocolError`).  So
the result never depends on llhttp's own leniencies or refusals, only on the bytes:

* The head is framed here, not by llhttp: the bytes up to the first CRLFCRLF are fed to
  a fresh llhttp parser, nothing after them.  Bodies (Content-Length and chunked),
  trailers and everything pipelined stay in this parser's buffer and are read by the
  base class, which holds them back until :meth:`start_next_request` (httptools has no
  way to pause llhttp after one message or to tell where a message ended, and it hands
  over neither the raw chunk-size lines nor their extensions, so their strictness could
  not be checked).
* An incomplete head, a head starting with an empty line, and a head that comes near a
  limit (request line, head size, field size, field count) or holds a bare CR, a bare LF
  or another control character (HTAB aside) is left to the base class whole: it is
  refused there with 414, 431 or 400 exactly as the Python backend refuses it, at the
  same prefix.
* llhttp refusing the head (an unknown or lower-case method, ``HTTP/1.2``, a URL byte it
  does not take, a ``CONNECT`` or ``Upgrade`` request it pauses on, ...) is not an
  answer: the base class reads the head and decides.
* The fields llhttp reports must rebuild the raw field section byte for byte as
  ``name ": " value`` lines, with token names: then every line is one the base class's
  field regular expression accepts, and it would give the same names and values (the
  value with its OWS stripped).  This catches what llhttp accepts and the Python backend
  refuses in the field syntax (a field dropped, folded or merged, an empty name, a name
  that is not a token), and ``Name:value`` without the space (read by the base class).
* The request line is then read from the raw bytes by the same code as in the base
  class, and the fields go through the same rules: one Host, the singleton fields, Host
  syntax, Connection, Content-Length / Transfer-Encoding framing (413, 501), Expect
  (417).  llhttp accepts, among others, two spaces in the request line, ``HTTP/2.0``,
  an asterisk-form target with GET, an ``ftp://`` target, two Host fields, none, a Host
  with a space, two Content-Type fields, ``Expect: foo``, ``Transfer-Encoding: gzip,
  chunked`` and Transfer-Encoding in HTTP/1.0: all are refused here as by the Python
  backend.

``tests/test_fuzz_parser.py`` runs both backends over the same generated and mutated
requests, at any split, and requires identical events and statuses.
"""

from __future__ import annotations

import re
from operator import itemgetter

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from .limits import HTTPLimits
from .parser import (
    _TOKEN,
    RequestParser,
)

__all__ = ["HttptoolsRequestParser"]

# Every control character but HTAB (CR and LF too): deleted to count them.
_CONTROLS = bytes([*range(0x09), *range(0x0a, 0x20), 0x7f])
# The field names joined by one space: each a non-empty token.
_NAMES = re.compile(rb"%s(?: %s)*" % (_TOKEN.encode(), _TOKEN.encode()))
_NAME = itemgetter(0)


class HttptoolsRequestParser(RequestParser):
    """:class:`RequestParser` with the request head tokenized by llhttp."""

    __slots__ = ("_fields",)

    def __init__(self, limits: HTTPLimits | None = None) -> None:
        super().__init__(limits)
        self._fields: list[tuple[bytes, bytes]] = []

    # -- llhttp callback (the only one set) ------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    # -- head ------------------------------------------------------------------------------

    def _parse_head(self) -> object:
        buf = self._buffer
        end = buf.find(b"\r\n\r\n")
        if end <= 0 or buf[0] == 10 or buf[0] == 13:
            return super()._parse_head()  # incomplete, or empty lines first
        limits = self.limits
        crlf = buf.count(b"\r\n", 0, end)
        # no CR, LF or other control character (HTAB aside) but the CRLF line ends
        if end >= limits.max_request_line or end > limits.max_header_field_size \
                or end + 4 > limits.max_head_size or crlf > limits.max_header_count \
                or len(buf[:end].translate(None, _CONTROLS)) != end - 2 * crlf:
            return super()._parse_head()
        fields = self._fields = []
        try:
            HttpRequestParser(self).feed_data(memoryview(buf)[:end + 4])
        except (HttpParserError, HttpParserUpgrade):
            return super()._parse_head()
        if len(fields) != crlf:
            return super()._parse_head()
        line_end = buf.find(b"\r\n")
        if crlf:
            # the field section is exactly the lines `name ": " value`, names tokens
            block = b"\r\n".join(map(b": ".join, fields))
            if len(block) != end - line_end - 2 or not buf.startswith(block, line_end + 2) \
                    or _NAMES.fullmatch(b" ".join(map(_NAME, fields))) is None:
                return super()._parse_head()
        # From here on the same rules as RequestParser._parse_head, on the same values.
        head = self._request_line(buf[:line_end].decode("latin-1"))
        headers = [(bname.decode("latin-1"), bvalue.decode("latin-1").strip(" \t"))
                   for bname, bvalue in fields]
        self._finish_head(head, headers, *self._host_and_framing(headers))
        self._keep_rest(buf, end + 4)
        return head
