"""Property-based and differential tests of the request parser (Hypothesis, h11).

Inputs are valid requests, pipelines of them and byte-level mutations of those
(``tests/http_strategies.py``).  Properties:

* the parser raises nothing but :class:`ProtocolError`, with a 4xx or 5xx status;
* fed whole, one byte at a time or cut at random points, it gives the same heads, body
  bytes, END_OF_MESSAGE count and error status;
* it agrees with h11 on what to accept and on what was received, except in the known
  disagreements listed in :data:`WE_REFUSE` and :data:`H11_REFUSES`, each of them
  described and justified in docs/conformance.md.

Each property runs over both parser backends (``tests/parser_backends.py``);
``tests/test_parser_backends.py`` checks that the two agree with each other directly.

Runs are bounded and reproducible (``derandomize=True``, no example database).
"""

from __future__ import annotations

import re

import h11
import pytest
from http_strategies import any_input, mutated, pipelines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_backends import BACKENDS

from wsgiloop.http import (
    END_OF_MESSAGE,
    NEED_DATA,
    HTTPLimits,
    ProtocolError,
    RequestHead,
    RequestParser,
)

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


Parser = type[RequestParser]
each_backend = pytest.mark.parametrize("parser_class", BACKENDS)


def parse(pieces: list[bytes], parser_class: Parser = RequestParser,
          limits: HTTPLimits | None = None) -> tuple[list, ProtocolError | None]:
    """Messages as [head, body, ended] lists, and the error if one was raised.

    Only ProtocolError may come out of the parser: anything else fails the test."""
    parser = parser_class(limits)
    messages: list = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                if isinstance(event, RequestHead):
                    messages.append([event, b"", False])
                elif event is END_OF_MESSAGE:
                    messages[-1][2] = True
                    parser.start_next_request()
                else:
                    assert isinstance(event, (bytes, memoryview)) and event, repr(event)
                    messages[-1][1] += event
    except ProtocolError as exc:
        assert 400 <= exc.status <= 599, exc
        return messages, exc
    return messages, None


def head_key(head: RequestHead) -> tuple:
    return (head.method, head.target, head.path, head.query, head.version, head.host,
            tuple(head.headers), head.keep_alive, head.expect_continue,
            head.content_length, head.chunked)


def outcome(pieces: list[bytes], parser_class: Parser = RequestParser,
            limits: HTTPLimits | None = None) -> tuple:
    """Heads, body bytes and ends of the messages, how many ended, the error status."""
    messages, error = parse(pieces, parser_class, limits)
    return ([(head_key(h), body, ended) for h, body, ended in messages],
            sum(ended for _, _, ended in messages), error and error.status)


@st.composite
def cuts(draw, data: bytes) -> list[bytes]:
    points = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=8)))
    points = [p for p in points if 0 < p < len(data)]
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# -- (a) and (b): only ProtocolError, and the same outcome however the input is split ----

@each_backend
@BOUNDED
@given(data=st.data())
def test_same_outcome_whole_bytewise_and_split(parser_class: Parser,
                                               data: st.DataObject) -> None:
    raw = data.draw(any_input, label="input")
    whole = outcome([raw], parser_class)
    assert outcome([raw[i:i + 1] for i in range(len(raw))], parser_class) == whole
    assert outcome(data.draw(cuts(raw), label="pieces"), parser_class) == whole


@each_backend
@settings(BOUNDED, max_examples=200)
@given(raw=pipelines())
def test_valid_pipelines_are_accepted_in_full(parser_class: Parser, raw: bytes) -> None:
    messages, error = parse([raw], parser_class)
    assert error is None, f"{error!r} for {raw!r}"
    assert messages and all(ended for _, _, ended in messages)


# -- (c) differential against h11 ------------------------------------------------------------

#: Our refusals where h11 accepts, by the detail of our ProtocolError: each is stricter
#: than h11 on purpose (docs/conformance.md, "Differences from h11").
WE_REFUSE = {
    # h11 takes a bare LF as a line end, and looks for a bare CR only once the head is
    # complete: it may still be waiting where we refused
    "bare-cr-or-lf": re.compile(r"(?i)bare LF|bare CR"),
    "obs-fold": re.compile(r"(?i)obsolete line folding"),
    # h11 takes any byte but NUL and whitespace in a field value, other CTLs too
    "ctl-in-value": re.compile(r"(?i)control character in a header field value"),
    "content-length-list-or-repeat": re.compile(r"(?i)a list in Content-Length|more than one "
                                                r"Content-Length field"),
    "singleton-repeated": re.compile(r"(?i)more than one (Content-Type|Authorization|"
                                     r"Proxy-Authorization) field", re.I),
    "te-and-cl": re.compile(r"(?i)both Content-Length and Transfer-Encoding"),
    "te-in-http10": re.compile(r"(?i)Transfer-Encoding in an HTTP/1.0 request"),
    "chunk-line": re.compile(r"(?i)malformed chunk size line|whitespace after the chunk size|"
                             r"chunk size overflows"),
    "trailer-field": re.compile(r"(?i)is not allowed in a trailer"),
    # h11 reads the trailer section only once its empty line has come: while it waits we
    # have already refused a malformed trailer line at its CRLF (h11 refuses it too later)
    "early-trailer-line": re.compile(r"\Ain a trailer: "),
    "expectation": re.compile(r"(?i)unsupported expectation"),
    "host-syntax": re.compile(r"(?i)malformed Host field"),
    "target-form": re.compile(r"(?i)asterisk-form|authority-form|malformed request target|"
                              r"unsupported absolute-form"),  # CONNECT's included
    "version": re.compile(r"(?i)HTTP version not supported"),
}

#: h11's refusals where we accept, by h11's message, each with a check on the input
#: from the message h11 refused on.
H11_REFUSES = {
    # RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request line
    "leading-empty-line": (re.compile(r"no request line received"), re.compile(rb"\A\r\n")),
    # RFC 9112 7.1.1: BWS is allowed before ";" in a chunk extension; h11 refuses it
    "chunk-ext-bws": (re.compile(r"illegal chunk header"),
                      re.compile(rb"\n[0-9A-Fa-f]+[ \t]+;")),
    # h11 refuses a request line whose first byte is below "!" before the line is
    # complete (it takes it for a TLS handshake or garbage); we refuse it at its CRLF
    "early-request-line": (re.compile(r"\Aillegal request line\Z"),
                           re.compile(rb"\A(?:\r\n)*[\x00-\x20][^\n]*\Z")),
}


def ours(raw: bytes, parser_class: Parser = RequestParser,
         ) -> tuple[list, ProtocolError | None, list[int]]:
    """Our messages in h11's terms, stopping where h11 stops (a message after which the
    connection cannot go on: HTTP/1.0, Connection: close, CONNECT); the error; and
    where in ``raw`` the bytes after each complete message begin."""
    parser = parser_class()
    parser.feed(raw)
    out: list = []
    ends: list[int] = []
    try:
        while (event := parser.next_event()) is not NEED_DATA:
            if isinstance(event, RequestHead):
                # h11 gives names in lower case, and Transfer-Encoding's value too
                fields = [(n.lower(), v.lower() if n.lower() == "transfer-encoding" else v)
                          for n, v in event.headers]
                out.append([event.method, event.target, event.version[5:], fields, b"",
                            False])
                head = event
            elif event is END_OF_MESSAGE:
                out[-1][5] = True
                ends.append(len(raw) - parser.buffered)
                if not head.keep_alive or head.version == "HTTP/1.0" \
                        or head.method == "CONNECT":
                    break
                parser.start_next_request()
            else:
                out[-1][4] += event
    except ProtocolError as exc:
        return [tuple(m) for m in out], exc, ends
    return [tuple(m) for m in out], None, ends


def theirs(raw: bytes) -> tuple[list, h11.RemoteProtocolError | None]:
    """h11's messages for ``raw``, answering each with a 204 to read the next one."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    out: list = []
    error = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            error = exc
            break
        if event is h11.NEED_DATA or event is h11.PAUSED:
            break
        if isinstance(event, h11.Request):
            version = event.http_version.decode()
            if re.fullmatch(r"1\.[1-9]", version):
                version = "1.1"  # we serve HTTP/1.x (x > 1) as HTTP/1.1 and say so
            out.append([event.method.decode("latin-1"), event.target.decode("latin-1"),
                        version, [(n.decode("latin-1"), v.decode("latin-1"))
                                  for n, v in event.headers], b"", False])
        elif isinstance(event, h11.Data):
            out[-1][4] += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            out[-1][5] = True
            conn.send(h11.Response(status_code=204, headers=[]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                break
            conn.start_next_cycle()
    return [tuple(m) for m in out], error


def known_disagreement(mine: ProtocolError | None, h11_error: h11.RemoteProtocolError | None,
                       we_stop_first: bool, rest: bytes) -> str | None:
    """The known disagreement this is, if it is one.  ``we_stop_first``: we read fewer
    messages in full than h11 did, or as many and only we refused; ``rest`` is what
    follows the messages both read in full."""
    if we_stop_first:
        if mine is None:
            return None
        if mine.status in (413, 414, 431):
            return "limits"  # ours are configurable; h11 has only its 16 KiB head limit
        return next((k for k, p in WE_REFUSE.items() if p.search(mine.detail)), None)
    if h11_error is None:
        return None
    return next((k for k, (msg, inp) in H11_REFUSES.items()
                 if msg.search(str(h11_error)) and inp.search(rest)), None)


def compare_with_h11(raw: bytes, parser_class: Parser = RequestParser) -> str:
    """"agree", or the name of the known disagreement; fails on any other difference."""
    mine, my_error, ends = ours(raw, parser_class)
    their, their_error = theirs(raw)
    # messages both read in full must be the same
    for a, b in zip(mine, their, strict=False):
        if a[5] and b[5]:
            assert a == b, f"different messages for {raw!r}:\n  ours {a!r}\n  h11  {b!r}"
    mine_full = sum(m[5] for m in mine)
    their_full = sum(m[5] for m in their)
    if (my_error is None) == (their_error is None) and mine_full == their_full:
        return "agree"
    we_stop_first = mine_full < their_full or (
        mine_full == their_full and my_error is not None and their_error is None)
    done = min(mine_full, their_full)
    rest = raw[ends[done - 1]:] if done else raw
    reason = known_disagreement(my_error, their_error, we_stop_first, rest)
    assert reason is not None, (
        f"unexplained difference for {raw!r}:\n  ours {mine!r} {my_error!r}\n"
        f"  h11  {their!r} {their_error!r}")
    return reason


@each_backend
@settings(BOUNDED, max_examples=200)
@given(raw=pipelines())
def test_h11_accepts_what_we_accept(parser_class: Parser, raw: bytes) -> None:
    """Valid requests: both accept them and read the same heads and bodies."""
    assert compare_with_h11(raw, parser_class) in ("agree", "leading-empty-line",
                                                   "chunk-ext-bws")


@each_backend
@settings(BOUNDED, max_examples=600)
@given(raw=mutated())
def test_h11_differences_are_all_known(parser_class: Parser, raw: bytes) -> None:
    compare_with_h11(raw, parser_class)


@pytest.mark.parametrize("raw, reason", [
    (b"GET / HTTP/1.1\nHost: x\n\n", "bare-cr-or-lf"),
    (b"GET / HTTP/1.1\r\nHost: x\r\r\n", "bare-cr-or-lf"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", "obs-fold"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nA: \x10\r\n\r\n", "ctl-in-value"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nA: a\x7f\r\n\r\n", "ctl-in-value"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
     "content-length-list-or-repeat"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
     "content-length-list-or-repeat"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: a/b\r\n\r\n",
     "singleton-repeated"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", "te-and-cl"),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "te-in-http10"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n"
     b"0\r\n\r\n", "chunk-line"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n"
     b"0\r\n\r\n", "chunk-line"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0000000000000005\r\nhello\r\n0\r\n\r\n", "chunk-line"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
     b"Content-Length: 5\r\n\r\n", "trailer-field"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
     b"\x00\x00\r\nX: y\r\n", "early-trailer-line"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", "expectation"),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "host-syntax"),
    (b"GET index HTTP/1.1\r\nHost: x\r\n\r\n", "target-form"),
    (b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", "target-form"),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "version"),
    (b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "leading-empty-line"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n"
     b"0\r\n\r\n", "chunk-ext-bws"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00", "early-request-line"),
])
@each_backend
def test_each_known_disagreement_is_real(parser_class: Parser, raw: bytes,
                                         reason: str) -> None:
    """Each listed difference from h11 happens (so the lists hold no dead entries)."""
    assert compare_with_h11(raw, parser_class) == reason
