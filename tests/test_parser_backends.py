"""The two request parser backends against each other (issue 11).

:class:`~wsgiloop.http.RequestParser` (pure Python) and
:class:`~wsgiloop.http.httptools_parser.HttptoolsRequestParser` (the head tokenized by
llhttp, then checked) must give, for every input and however it is split into reads,
the same events in the same order, the same ``buffered`` count after each (the
connection reads it), the same ``take_end()`` answers and the same error status.  The
inputs: valid pipelines, byte-level mutations of them, and changes aimed at where
llhttp is known to be more lenient or stricter than we are
(``http_strategies.edge_requests``), with the default limits and with small ones.

Also: the leniencies of llhttp found while writing the adapter, each refused by both
with the same status; clean heads taking the llhttp path (no fallback); the Python
parser's one-pass reading and its ``take_clean`` (the connection's flat path) against
its strict code; the ``--parser`` setting.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from http_corpus import CASES
from http_strategies import any_input, clean_requests, edge_requests, mutated, pipelines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_backends import NEEDS_HTTPTOOLS, HttptoolsRequestParser
from support import ROOT, server_env

from wsgiloop.config import load_settings
from wsgiloop.http import (
    END_OF_MESSAGE,
    NEED_DATA,
    HTTPLimits,
    ProtocolError,
    RequestHead,
    RequestParser,
    parser_class,
)
from wsgiloop.server import ConnectionParameters
from wsgiloop.serving import connection_parameters

BOUNDED = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def head_key(head: RequestHead) -> tuple:
    return (head.method, head.target, head.path, head.query, head.version, head.host,
            tuple(head.headers), head.keep_alive, head.expect_continue,
            head.content_length, head.chunked, head.has_body)


def trace(cls: type[RequestParser], pieces: list[bytes],
          limits: HTTPLimits | None = None, details: bool = False) -> list:
    """Everything a driver sees, fed ``pieces`` one by one: each event with ``buffered``
    after it, ``take_end()`` after each head (as the connection calls it), and the
    final error status (with its detail, with ``details``), if any."""
    parser = cls(limits)
    out: list = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    out.append(("need", parser.buffered))
                    break
                if event is END_OF_MESSAGE:
                    out.append(("end", parser.buffered))
                    parser.start_next_request()
                elif isinstance(event, RequestHead):
                    out.append(("head", head_key(event), parser.buffered))
                    if not event.expect_continue and parser.take_end():
                        out.append(("taken", parser.buffered))
                        parser.start_next_request()
                else:
                    assert type(event) in (bytes, memoryview) and event, repr(event)
                    out.append(("data", bytes(event), parser.buffered))
    except ProtocolError as exc:
        assert 400 <= exc.status <= 599, exc
        out.append(("error", exc.status, exc.detail) if details else ("error", exc.status))
    return out


@st.composite
def splits(draw, data: bytes) -> list[bytes]:
    how = draw(st.sampled_from(["whole", "bytewise", "cuts", "cuts"]))
    if how == "whole" or len(data) < 2:
        return [data]
    if how == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    points = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=8)))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def assert_agree(pieces: list[bytes], limits: HTTPLimits | None = None) -> list:
    python = trace(RequestParser, pieces, limits)
    httptools = trace(HttptoolsRequestParser, pieces, limits)
    assert httptools == python, f"backends differ on {b''.join(pieces)!r} split {pieces!r}"
    return python


inputs = st.one_of(any_input, edge_requests(), mutated(edge_requests()))


# -- the differential properties ------------------------------------------------------------

@NEEDS_HTTPTOOLS
@BOUNDED
@given(st.data())
def test_backends_agree_at_any_split(data: st.DataObject) -> None:
    raw = data.draw(inputs, label="input")
    whole = assert_agree([raw])
    pieces = data.draw(splits(raw), label="pieces")
    split = assert_agree(pieces)
    # and the outcome does not depend on the split: the same heads, body bytes, ends and
    # error (``buffered``, NEED_DATA and how the body comes in pieces aside)
    assert outcome(split) == outcome(whole)


def outcome(events: list) -> list:
    out: list = []
    for event in events:
        kind = event[0]
        if kind == "data":
            if out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + event[1])
            else:
                out.append(("data", event[1]))
        elif kind == "head":
            out.append(event[:2])
        elif kind in ("end", "taken"):
            out.append(("end",))
        elif kind == "error":
            out.append(event)
    return out


@st.composite
def small_limits(draw) -> HTTPLimits:
    return HTTPLimits(max_request_line=draw(st.integers(8, 80)),
                      max_header_count=draw(st.integers(0, 6)),
                      max_header_field_size=draw(st.integers(4, 60)),
                      max_head_size=draw(st.integers(16, 300)),
                      max_body_size=draw(st.integers(0, 40)),
                      max_chunk_line=draw(st.integers(1, 30)))


@NEEDS_HTTPTOOLS
@settings(BOUNDED, max_examples=300)
@given(st.data())
def test_backends_agree_under_small_limits(data: st.DataObject) -> None:
    limits = data.draw(small_limits(), label="limits")
    raw = data.draw(st.one_of(pipelines(), edge_requests(), mutated()), label="input")
    assert_agree([raw], limits)
    assert_agree(data.draw(splits(raw), label="pieces"), limits)


@NEEDS_HTTPTOOLS
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_backends_agree_on_the_corpus(case) -> None:
    assert_agree([case.data], case.limits)
    assert_agree([case.data[i:i + 1] for i in range(len(case.data))], case.limits)


# -- where llhttp is lenient, and where it is stricter ------------------------------------

H = "Host: x\r\n"

#: (request, status both answer): llhttp alone accepts each of these heads
LLHTTP_ACCEPTS = [
    (b"GET  / HTTP/1.1\r\n" + H.encode() + b"\r\n", 400),  # two spaces
    (b"GET / HTTP/2.0\r\n" + H.encode() + b"\r\n", 505),
    (b"GET / HTTP/0.9\r\n" + H.encode() + b"\r\n", 505),
    (b"GET * HTTP/1.1\r\n" + H.encode() + b"\r\n", 400),
    (b"GET ftp://x/y HTTP/1.1\r\n" + H.encode() + b"\r\n", 400),
    (b"GET http://u@x/ HTTP/1.1\r\n" + H.encode() + b"\r\n", 400),
    (b"GET index.html HTTP/1.1\r\n" + H.encode() + b"\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H.encode() + b"Content-Type: a\r\nContent-Type: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H.encode() + b"Authorization: a\r\nAuthorization: b\r\n\r\n",
     400),
    (b"GET / HTTP/1.1\r\n" + H.encode() + b"Expect: foo\r\n\r\n", 417),
    (b"POST / HTTP/1.1\r\n" + H.encode() + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\n" + H.encode() + b"Transfer-Encoding: identity\r\n\r\n", 400),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n" + H.encode() + b"Content-Length: 2000\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\n" + H.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
     b"3e9\r\n", 413),
    (b"POST / HTTP/1.1\r\n" + H.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
     b"0\r\nHost: y\r\n\r\n", 400),  # a forbidden trailer
    (b"POST / HTTP/1.1\r\n" + H.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5;a=\r\nhello\r\n0\r\n\r\n", 400),
    (b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\n" + H.encode() + b"\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + H.encode() + b"".join(b"X%d: 1\r\n" % i for i in range(11))
     + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + H.encode() + b"X: " + b"v" * 600 + b"\r\n\r\n", 431),
]

#: requests llhttp refuses and we serve: the adapter hands them to the Python code
LLHTTP_REFUSES = [
    b"FOO / HTTP/1.1\r\n" + H.encode() + b"\r\n",
    b"get / HTTP/1.1\r\n" + H.encode() + b"\r\n",
    b"GET / HTTP/1.2\r\n" + H.encode() + b"\r\n",
    b"CONNECT x:80 HTTP/1.1\r\n" + H.encode() + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H.encode() + b"Upgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + H.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
    b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + H.encode() + b"Connection: close\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\n" + H.encode() + b"\r\n",
    b"GET / HTTP/1.1\r\n" + H.encode() + b"X:1\r\nY:\t2\r\n\r\n",
]
LIMITS = HTTPLimits(max_request_line=1024, max_header_count=10, max_header_field_size=512,
                    max_head_size=4096, max_body_size=1000)


@NEEDS_HTTPTOOLS
@pytest.mark.parametrize("raw, status", LLHTTP_ACCEPTS)
def test_what_llhttp_accepts_is_refused_by_both(raw: bytes, status: int) -> None:
    result = assert_agree([raw], LIMITS)
    assert result[-1] == ("error", status), result
    assert_agree([raw[i:i + 1] for i in range(len(raw))], LIMITS)


@NEEDS_HTTPTOOLS
@pytest.mark.parametrize("raw", LLHTTP_REFUSES)
def test_what_llhttp_refuses_is_served_by_both(raw: bytes) -> None:
    result = assert_agree([raw + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"], LIMITS)
    assert [e[0] for e in result].count("head") == 2, result


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> list:
    """The complete heads an adapter handed to the base class's code."""
    calls: list = []
    base = RequestParser._parse_head

    def counting(self: RequestParser) -> object:
        if type(self) is HttptoolsRequestParser and b"\r\n\r\n" in self._buffer:
            calls.append(self._buffer[:40])
        return base(self)

    monkeypatch.setattr(RequestParser, "_parse_head", counting)
    return calls


@NEEDS_HTTPTOOLS
def test_clean_heads_take_the_llhttp_path(fallbacks: list) -> None:
    clean = [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
        b"GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\nAccept: */*\r\nX-Empty: \r\n"
        b"Cookie: a=1; b=2\r\nX-Obs: \x80\xff\r\nX-Tab: a\tb \t\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Type: t/p\r\n\r\nabc",
        b"PUT /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue"
        b"\r\n\r\n1;a=b\r\nz\r\n0\r\nX-Sum: 1\r\n\r\n",
        b"GET http://a.example/x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"PROPFIND /d HTTP/1.1\r\nHost: x\r\nDepth: 1\r\n\r\n",
    ]
    pipeline = b"".join(clean)
    result = assert_agree([pipeline])
    assert [e[0] for e in result].count("head") == len(clean), result
    assert fallbacks == []


@NEEDS_HTTPTOOLS
@pytest.mark.parametrize("raw", LLHTTP_REFUSES[:5] + LLHTTP_REFUSES[7:] + [
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n",   # a control character
    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",     # obs-fold
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",                # space before the colon
    b"GET / HTTP/1.1\r\nHost: x\r\nX: 1\n\r\n\r\n",       # a bare LF
    b"GET / HTTP/1.1\r\nHost: x\r\nX\r\n\r\n",            # no colon
])
def test_other_heads_go_to_the_python_code(fallbacks: list, raw: bytes) -> None:
    """What llhttp refuses, or hands over in another form than ``name ": " value``
    lines, is read by the base class's code.  (The request line is always read from the
    raw bytes by the same code as in the base class: two spaces or HTTP/2.0 in it are
    refused without a fallback.)"""
    parser = HttptoolsRequestParser(LIMITS)
    parser.feed(raw)
    try:
        parser.next_event()
    except ProtocolError:
        pass
    assert fallbacks


@NEEDS_HTTPTOOLS
def test_incomplete_heads_wait_or_fail_as_in_python() -> None:
    head = b"GET /" + b"a" * 30 + b" HTTP/1.1\r\nHost: x\r\n"
    limits = HTTPLimits(max_request_line=20)
    for cls in (RequestParser, HttptoolsRequestParser):
        parser = cls(limits)
        parser.feed(head[:20])
        assert parser.next_event() is NEED_DATA
        parser.feed(head[20:21])
        with pytest.raises(ProtocolError) as info:
            parser.next_event()
        assert info.value.status == 414


# -- the one-pass head path of the Python parser ------------------------------------------

class StrictRequestParser(RequestParser):
    """The Python parser with every head read by the strict, line-by-line code."""

    _parse_head = RequestParser._parse_head_strict


def assert_one_pass_agrees(pieces: list[bytes], limits: HTTPLimits | None = None) -> None:
    fast = trace(RequestParser, pieces, limits, details=True)
    strict = trace(StrictRequestParser, pieces, limits, details=True)
    assert fast == strict, f"one-pass and strict differ on {b''.join(pieces)!r}"


@BOUNDED
@given(st.data())
def test_one_pass_heads_agree_with_the_strict_reading(data: st.DataObject) -> None:
    """RequestParser reads a plainly clean head in one pass and leaves every other head
    to its strict code: the events, ``buffered`` counts, statuses and details must be
    those of the strict code alone, for any input at any split, under any limits."""
    raw = data.draw(inputs, label="input")
    assert_one_pass_agrees([raw])
    assert_one_pass_agrees(data.draw(splits(raw), label="pieces"))
    limits = data.draw(small_limits(), label="limits")
    assert_one_pass_agrees([raw], limits)


@pytest.fixture
def strict_reads(monkeypatch: pytest.MonkeyPatch) -> list:
    """The heads the Python parser's one-pass path handed to the strict code."""
    calls: list = []
    strict = RequestParser._parse_head_strict

    def counting(self: RequestParser) -> object:
        if b"\r\n\r\n" in self._buffer:
            calls.append(self._buffer[:40])
        return strict(self)

    monkeypatch.setattr(RequestParser, "_parse_head_strict", counting)
    return calls


def test_common_heads_take_the_one_pass_path(strict_reads: list) -> None:
    common = [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
        b"GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\nAccept: */*\r\nX-Empty: \r\n"
        b"Cookie: a=1; b=2\r\nCookie: c=3\r\nConnection: keep-alive\r\n\r\n",
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Type: t/p\r\n\r\nabc",
        b"PUT /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue"
        b"\r\n\r\n1;a=b\r\nz\r\n0\r\nX-Sum: 1\r\n\r\n",
        b"DELETE /x HTTP/1.1\r\nhost: [::1]:80\r\n\r\n",
    ]
    messages, error = [], None
    parser = RequestParser()
    parser.feed(b"".join(common))
    while (event := parser.next_event()) is not NEED_DATA:
        if isinstance(event, RequestHead):
            messages.append(event)
            if parser.take_end():
                parser.start_next_request()
        elif event is END_OF_MESSAGE:
            parser.start_next_request()
    assert len(messages) == len(common) and error is None
    assert messages[1].headers[4] == ("Cookie", "a=1; b=2")
    assert strict_reads == []


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.0\r\n\r\n",                                # another version
    b"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n",                 # another method
    b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",               # another target form
    b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",                  # an empty line first
    b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",                     # two spaces
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n",            # HTAB
    b"GET / HTTP/1.1\r\nHost: x\r\nX: \x85\r\n\r\n",              # unprintable obs-text
    b"GET / HTTP/1.1\r\nHost: x\r\nX: 1\n\r\n\r\n",              # a bare LF
    b"GET / HTTP/1.1\r\nHost: x\r\nX\r\n\r\n",                   # no colon
    b"GET / HTTP/1.1\r\nHost: x\r\nA B: c\r\n\r\n",              # a space in a name
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",                     # space before the colon
    b"GET / HTTP/1.1\r\nHost: x\r\n: c\r\n\r\n",                 # an empty name
    b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",             # two Host fields
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\ncontent-type: a\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",     # near a limit
])
def test_other_heads_go_to_the_strict_code(strict_reads: list, raw: bytes) -> None:
    assert_one_pass_agrees([raw])
    strict_reads.clear()
    parser = RequestParser()
    parser.feed(raw)
    try:
        parser.next_event()
    except ProtocolError:
        pass
    assert strict_reads


# -- take_clean, the reading of the connection's flat path ----------------------------------

def clean_taken(raw: bytes, limits: HTTPLimits | None = None) -> tuple:
    """``take_clean(raw)`` on a new parser, then what feeding ``raw`` to the same parser
    gives (it must be ready for any request after either answer)."""
    parser = RequestParser(limits)
    head = parser.take_clean(raw)
    assert parser.buffered == 0
    return head, trace(lambda _: parser, [raw], limits, details=True)


@BOUNDED
@given(st.data())
def test_take_clean_agrees_with_the_strict_reading(data: st.DataObject) -> None:
    """What take_clean takes, the strict code reads as that head and its end of message
    with nothing left over; what it declines it leaves untouched, and the parser then
    reads it as the strict code does -- for any input, under any limits."""
    raw = data.draw(st.one_of(clean_requests(), clean_requests(), inputs), label="input")
    limits = data.draw(st.none() | small_limits(), label="limits")
    head, after = clean_taken(raw, limits)
    strict = trace(StrictRequestParser, [raw], limits, details=True)
    if head is not None:
        assert strict == [("head", head_key(head), 0), ("taken", 0), ("need", 0)], raw
    assert after == strict, raw


def test_take_clean_takes_the_common_requests() -> None:
    for raw in [b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
                b"GET /a%20b?c HTTP/1.1\r\nhost: x\r\nUser-Agent: u\r\nAccept: */*\r\n"
                b"X-Empty: \r\nCookie: a=1\r\ncookie: b\r\nX_Y: 1\r\n\r\n",
                b"HEAD /x HTTP/1.1\r\nHost: localhost\r\n\r\n",
                b"DELETE /x HTTP/1.1\r\nHost:\r\n\r\n",
                b"GET / HTTP/1.1\r\nUser-Agent: u\r\nHOST: x:80\r\nAccept: */*\r\n\r\n",
                b"GET / HTTP/1.1\r\nhOsT: x\r\n\r\n"]:
        head, _ = clean_taken(raw)
        assert head is not None and head.keep_alive and not head.has_body, raw
        assert head.host == head.get("host"), raw
    for raw in [b"GET / HTTP/1.1\r\nHost: x\r\n\r\nG",             # more after it
                b"GET / HTTP/1.1\r\nHost: x\r\n\r",                 # incomplete
                b"GET / HTTP/1.1\r\n\r\n",                          # no Host
                b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",          # for the regex
                b"GET / HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n",       # two Host fields
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\n\r\n",
                b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x \r\n\r\n",            # whitespace after values:
                b"GET / HTTP/1.1\r\nHost: x\r\nX: v \r\n\r\n",     # for the strict reading,
                b"GET / HTTP/1.1\r\nHost: x\r\nX: v\t\r\n\r\n"]:  # which strips it
        assert clean_taken(raw)[0] is None, raw
    parser = RequestParser()
    parser.feed(b"G")
    assert parser.take_clean(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None  # buffered


def test_the_unscanned_names_are_no_host_or_framing_field() -> None:
    """The field scan passes over the usual spellings of other fields without
    lower-casing them: none of them may be a field it has a rule for."""
    from wsgiloop.http import parser as parser_mod
    for name in parser_mod._UNSCANNED_FIELDS:
        assert name.lower() != "host" and name.lower() not in parser_mod._FRAMING_FIELDS
    head, _ = clean_taken(b"GET / HTTP/1.1\r\nUser-Agent: u\r\nHost: x\r\n"
                          b"Cookie: a\r\ncookie: b\r\n\r\n")
    assert head is not None and head.headers[2:] == [("Cookie", "a"), ("cookie", "b")]


# -- the setting --------------------------------------------------------------------------

def test_parser_class_names() -> None:
    assert parser_class() is RequestParser  # auto: python (measured: httptools is slower)
    assert parser_class("auto") is RequestParser
    assert parser_class("python") is RequestParser
    with pytest.raises(ValueError):
        parser_class("llhttp")
    assert ConnectionParameters().parser_class is RequestParser


@NEEDS_HTTPTOOLS
def test_parser_class_httptools() -> None:
    assert parser_class("httptools") is HttptoolsRequestParser


@pytest.mark.parametrize("name, expected", [
    ("auto", RequestParser), ("python", RequestParser),
    pytest.param("httptools", HttptoolsRequestParser, marks=NEEDS_HTTPTOOLS)])
def test_the_setting_reaches_the_connection(name: str, expected: type) -> None:
    s, _ = load_settings(["--parser", name, "apps:request_echo"], {}, cwd=str(ROOT))
    assert s.parser == name
    params = connection_parameters(s)
    assert params.parser_class is expected
    assert isinstance(params.parser_class(params.limits), RequestParser)
    s, _ = load_settings(["apps:request_echo"], {"WSGILOOP_PARSER": name}, cwd=str(ROOT))
    assert s.parser == name


def test_httptools_without_the_package_is_one_error_line_and_exit_2() -> None:
    code = ("import sys; sys.modules['httptools'] = None\n"
            "from wsgiloop.cli import main\n"
            "sys.exit(main(['--parser', 'httptools', 'apps:request_echo']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env=server_env())
    assert proc.returncode == 2, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--parser" in lines[0] and "httptools" in lines[0] and "pip install" in lines[0]
    # python and auto need nothing
    code = code.replace("'httptools', 'apps", "'auto', '--check-config', 'apps")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env=server_env())
    assert proc.returncode == 0, proc
