"""Unit tests for the sans-I/O request parser (wsgiloop.http.parser).

Every case of ``http_corpus.CASES`` is replayed whole, one byte at a time and cut at
seeded random points; the events (heads summarized, body data concatenated) and the final
error status must be the same every way.  Every test runs over each parser backend
(``tests/parser_backends.py``): the pure-Python one and httptools.
"""

from __future__ import annotations

import random

import pytest
from http_corpus import ANY, CASES, END, GET, HOST, Case, msg
from parser_backends import BACKENDS

from wsgiloop.http import (
    END_OF_MESSAGE,
    NEED_DATA,
    HTTPLimits,
    ProtocolError,
    RequestHead,
    RequestParser,
)

SEEDS = range(5)


Parser = type[RequestParser]


@pytest.fixture(params=BACKENDS)
def parser_class(request: pytest.FixtureRequest) -> Parser:
    return request.param


SPLITS = ["whole", "bytewise"] + [f"random-{seed}" for seed in SEEDS]


def split(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    rng = random.Random(f"{how}:{len(data)}:{data[:64]!r}")
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def summarize(h: RequestHead) -> dict:
    return {"method": h.method, "path": h.path, "query": h.query, "version": h.version,
            "host": h.host, "keep_alive": h.keep_alive, "chunked": h.chunked,
            "content_length": h.content_length, "expect_continue": h.expect_continue,
            "headers": h.headers}


def pump(parser: RequestParser, out: list) -> None:
    """Take every available event, starting the next request after each message."""
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            return
        if event is END_OF_MESSAGE:
            out.append(END)
            parser.start_next_request()
        elif isinstance(event, RequestHead):
            out.append(summarize(event))
        else:
            assert isinstance(event, (bytes, memoryview)) and event, f"bad data event {event!r}"
            event = bytes(event)
            if out and isinstance(out[-1], bytes):
                out[-1] += event
            else:
                out.append(event)


def replay(data: bytes, chunks: list[bytes], limits: HTTPLimits | None = None,
           parser_class: Parser = RequestParser):
    """(events, ProtocolError or None, parser) after feeding ``chunks``."""
    assert b"".join(chunks) == data
    parser = parser_class(limits)
    events: list = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            pump(parser, events)
    except ProtocolError as exc:
        return events, exc, parser
    return events, None, parser


def matches(expected: list, actual: list) -> bool:
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        if isinstance(want, dict) and isinstance(got, dict):
            if any(v is not ANY and got[k] != v for k, v in want.items()):
                return False
        elif want != got:
            return False
    return True


@pytest.mark.parametrize("how", SPLITS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus(case: Case, how: str, parser_class: Parser) -> None:
    events, error, parser = replay(case.data, split(case.data, how), case.limits,
                                   parser_class)
    assert matches(case.events, events), f"events {events!r}\n  != {case.events!r}"
    if case.error is None:
        assert error is None, f"unexpected {error!r}"
        assert parser.buffered == 0
        assert parser.next_event() is NEED_DATA
    else:
        assert error is not None, "no ProtocolError raised"
        assert error.status == case.error, f"{error!r}"
        # The parser is dead: nothing after the error is ever parsed, not even a clean
        # request fed afterwards.
        for _ in range(3):
            parser.feed(GET)
            with pytest.raises(ProtocolError):
                parser.next_event()


def test_corpus_is_well_formed() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for case in CASES:
        assert case.data, case.id
        if case.error is None:
            assert case.events and case.events[-1] == END, case.id
    assert len(CASES) >= 150


def test_random_splits_cut_the_data() -> None:
    data = bytes(range(100))
    for how in SPLITS[2:]:
        chunks = split(data, how)
        assert b"".join(chunks) == data and len(chunks) > 1 and all(chunks)


# -- behaviour outside the corpus -----------------------------------------------------------

def parse_one(data: bytes, limits: HTTPLimits | None = None,
              parser_class: Parser = RequestParser) -> RequestHead:
    parser = parser_class(limits)
    parser.feed(data)
    event = parser.next_event()
    assert isinstance(event, RequestHead)
    return event


def test_get_is_case_insensitive(parser_class: Parser) -> None:
    h = parse_one(msg("GET / HTTP/1.1", "hOsT: example.com", "X-Token: a", "x-token: b",
                      "Content-Type: text/plain"), parser_class=parser_class)
    assert h.get("host") == "example.com"
    assert h.get("HOST") == "example.com"
    assert h.get("X-TOKEN") == "a"          # the first of several
    assert h.get("x-token") == "a"
    assert h.get("content-type") == "text/plain"
    assert h.get("Missing") is None
    assert h.get("missing", "dflt") == "dflt"


def test_take_end_consumes_only_the_end_of_a_bodiless_request(parser_class: Parser) -> None:
    p = parser_class()
    p.feed(msg("GET /a HTTP/1.1", HOST) + msg("POST /b HTTP/1.1", HOST, "Content-Length: 2")
           + b"xy")
    assert not p.take_end()  # nothing parsed yet
    assert isinstance(p.next_event(), RequestHead)
    assert p.take_end()  # GET: no body, END_OF_MESSAGE taken
    assert not p.take_end()
    assert p.next_event() is NEED_DATA  # held until the response is sent
    p.start_next_request()
    head = p.next_event()
    assert head.method == "POST"
    assert not p.take_end()  # a body comes first
    assert p.next_event() == b"xy"
    assert p.next_event() is END_OF_MESSAGE


def test_head_target_and_has_body(parser_class: Parser) -> None:
    h = parse_one(msg("GET http://a.example/x?y HTTP/1.1", HOST), parser_class=parser_class)
    assert h.target == "http://a.example/x?y"
    assert not h.has_body
    h = parse_one(msg("POST /p HTTP/1.1", HOST, "Content-Length: 0"), parser_class=parser_class)
    assert h.target == "/p" and not h.has_body
    h = parse_one(msg("POST /p HTTP/1.1", HOST, "Content-Length: 1"), parser_class=parser_class)
    assert h.has_body
    h = parse_one(msg("POST /p HTTP/1.1", HOST, "Transfer-Encoding: chunked"),
                  parser_class=parser_class)
    assert h.has_body


def test_pipelined_request_waits_for_start_next_request(parser_class: Parser) -> None:
    parser = parser_class()
    parser.feed(GET + msg("GET /second HTTP/1.1", HOST))
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() is END_OF_MESSAGE
    buffered = parser.buffered
    assert buffered == len(GET) + 6
    for _ in range(3):
        assert parser.next_event() is NEED_DATA
    assert parser.buffered == buffered
    parser.start_next_request()
    second = parser.next_event()
    assert isinstance(second, RequestHead) and second.path == "/second"
    assert parser.next_event() is END_OF_MESSAGE
    parser.start_next_request()
    assert parser.next_event() is NEED_DATA
    assert parser.buffered == 0


def test_start_next_request_is_a_no_op_mid_request(parser_class: Parser) -> None:
    parser = parser_class()
    parser.feed(msg("POST / HTTP/1.1", HOST, "Content-Length: 4", body=b"ab"))
    assert isinstance(parser.next_event(), RequestHead)
    parser.start_next_request()
    assert parser.next_event() == b"ab"
    parser.start_next_request()
    assert parser.next_event() is NEED_DATA
    parser.feed(b"cd")
    assert parser.next_event() == b"cd"
    assert parser.next_event() is END_OF_MESSAGE


def test_body_never_overruns_content_length(parser_class: Parser) -> None:
    parser = parser_class()
    parser.feed(msg("POST / HTTP/1.1", HOST, "Content-Length: 3", body=b"abcGET"))
    parser.next_event()
    assert parser.next_event() == b"abc"
    assert parser.next_event() is END_OF_MESSAGE
    assert parser.buffered == 3


def test_incomplete_body_needs_data_without_error(parser_class: Parser) -> None:
    for data in (msg("POST / HTTP/1.1", HOST, "Content-Length: 10", body=b"abc"),
                 msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                     body=b"5\r\nab"),
                 msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                     body=b"2\r\nab\r\n0\r\nX: y\r\n")):
        events, error, parser = replay(data, [data], parser_class=parser_class)
        assert error is None and END not in events
        assert parser.next_event() is NEED_DATA


def test_smuggling_attempt_yields_no_second_head(parser_class: Parser) -> None:
    inner = msg("GET /admin HTTP/1.1", HOST)
    data = msg("POST / HTTP/1.1", HOST, f"Content-Length: {len(inner) + 5}",
               "Transfer-Encoding: chunked", body=b"0\r\n\r\n" + inner)
    for how in SPLITS:
        parser = parser_class()
        heads = []
        with pytest.raises(ProtocolError) as info:
            for chunk in split(data, how):
                parser.feed(chunk)
                while (event := parser.next_event()) is not NEED_DATA:
                    heads.append(event)
                    if event is END_OF_MESSAGE:
                        parser.start_next_request()
        assert info.value.status == 400
        assert heads == []
        for _ in range(3):
            with pytest.raises(ProtocolError):
                parser.next_event()


def test_error_leaves_parser_dead_even_after_valid_bytes(parser_class: Parser) -> None:
    parser = parser_class()
    parser.feed(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n" + GET)
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 400
    for data in (b"", GET, b"\r\n" + GET):
        parser.feed(data)
        parser.start_next_request()
        with pytest.raises(ProtocolError) as again:
            parser.next_event()
        assert again.value.status == 400


def test_protocol_error_carries_status_and_detail(parser_class: Parser) -> None:
    parser = parser_class()
    parser.feed(msg("GET / HTTP/2.0", HOST))
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    exc = info.value
    assert exc.status == 505
    assert exc.detail
    assert str(exc).startswith("505 HTTP Version Not Supported: ")


def test_limits_are_checked_before_the_head_is_complete(parser_class: Parser) -> None:
    limits = HTTPLimits(max_request_line=50, max_head_size=200)
    parser = parser_class(limits)
    parser.feed(b"GET /" + b"a" * 60)
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 414
    parser = parser_class(limits)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 200)
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 431


def test_content_length_over_limit_is_refused_before_the_body(parser_class: Parser) -> None:
    parser = parser_class(HTTPLimits(max_body_size=100))
    parser.feed(msg("POST / HTTP/1.1", HOST, "Content-Length: 101"))
    with pytest.raises(ProtocolError) as info:
        parser.next_event()
    assert info.value.status == 413


def test_large_body_in_pieces(parser_class: Parser) -> None:
    body = bytes(range(256)) * 64
    data = msg("POST / HTTP/1.1", HOST, f"Content-Length: {len(body)}", body=body)
    for how in ("whole", "random-0"):
        events, error, _ = replay(data, split(data, how), parser_class=parser_class)
        assert error is None and events[1] == body and events[2] == END
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                       for i in range(0, len(body), 1000)) + b"0\r\n\r\n"
    data = msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", body=chunked)
    for how in ("whole", "random-1"):
        events, error, _ = replay(data, split(data, how), parser_class=parser_class)
        assert error is None and events[1] == body and events[2] == END


def test_many_leading_empty_lines_are_consumed(parser_class: Parser) -> None:
    parser = parser_class()
    for _ in range(1000):
        parser.feed(b"\r\n")
        assert parser.next_event() is NEED_DATA
    assert parser.buffered == 0
    parser.feed(GET)
    assert isinstance(parser.next_event(), RequestHead)


# -- answers never depend on earlier traffic ------------------------------------------------

def outcome(data: bytes, parser_class: Parser = RequestParser) -> object:
    """The status a fresh parser refuses ``data`` with, or its events."""
    events, error, _ = replay(data, [data], parser_class=parser_class)
    return error.status if error is not None else events


@pytest.mark.parametrize("line", ["Foo", "Host", "Content-Length", "x-Y", "Accept"])
def test_colon_less_field_is_refused_after_the_name_was_seen(line: str,
                                                            parser_class: Parser) -> None:
    """Regression: the name of a colon-less line had been checked once, in an earlier
    request with a valid field of that name, and the line was then taken as an empty
    field (a module-level cache of checked names).  Fresh parsers each time."""
    fields = [line] if line == "Host" else [HOST, line]
    data = msg("GET / HTTP/1.1", *fields)
    warm = msg("GET / HTTP/1.1", *[f + ": 0" if f == line else f for f in fields])
    assert outcome(data, parser_class) == 400
    for _ in range(3):
        assert outcome(warm, parser_class)[-1] == END
        assert outcome(data, parser_class) == 400


def test_host_answer_does_not_depend_on_earlier_hosts(parser_class: Parser) -> None:
    for host in ("example.com", "a.example:80", "[::1]", ""):
        first = outcome(msg("GET / HTTP/1.1", f"Host: {host}"), parser_class)
        assert first != 400
        assert outcome(msg("GET / HTTP/1.1", "Host"), parser_class) == 400
        assert outcome(msg("GET / HTTP/1.1", f"Host: {host}@x"), parser_class) == 400
        assert outcome(msg("GET / HTTP/1.1", f"Host: {host}"), parser_class) == first


def test_parser_modules_keep_no_state_between_parsers(parser_class: Parser) -> None:
    """Nothing the parser modules hold may grow with the traffic they parse."""
    import sys

    modules = [sys.modules[RequestParser.__module__], sys.modules[parser_class.__module__]]

    def mutable_state() -> dict:
        return {(m.__name__, k): len(v) for m in modules for k, v in vars(m).items()
                if isinstance(v, (dict, set, list)) and not k.startswith("__")}

    before = mutable_state()
    for i in range(50):
        outcome(msg("GET / HTTP/1.1", f"Host: h{i}.example", f"X-Name-{i}: {i}"), parser_class)
    assert mutable_state() == before
