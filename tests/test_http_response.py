"""Unit tests for the response framer (wsgiloop.http.response)."""

from __future__ import annotations

import re

import pytest
from support import FakeClock

from wsgiloop.http import ResponseFramer, http_date
from wsgiloop.http import response as response_mod
from wsgiloop.http.response import CHUNKED, CLOSE, LENGTH, NO_BODY, parse_status

IMF_FIXDATE = re.compile(
    rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
    rb"|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT")


def frame(method="GET", version="HTTP/1.1", keep_alive=True, status="200 OK",
          headers=(), server=b"wsgiloop") -> ResponseFramer:
    return ResponseFramer(method, version, keep_alive, status, list(headers), server)


def split_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(status line, [(name, value)]) of a head, checking its CRLF framing."""
    assert head.endswith(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b": ")
        assert sep and name and b"\n" not in line and b"\r" not in line, line
        fields.append((name, value))
    return lines[0], fields


def values(head: bytes, name: bytes) -> list[bytes]:
    return [v for n, v in split_head(head)[1] if n.lower() == name.lower()]


# -- the head ---------------------------------------------------------------------------------

def test_head_layout() -> None:
    f = frame(headers=[("Content-Type", "text/plain"), ("Content-Length", "5"),
                       ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    status_line, fields = split_head(f.head)
    assert status_line == b"HTTP/1.1 200 OK"
    names = [n for n, _ in fields]
    assert names.count(b"Date") == 1
    assert values(f.head, b"Server") == [b"wsgiloop"]
    assert values(f.head, b"Content-Type") == [b"text/plain"]
    assert values(f.head, b"Set-Cookie") == [b"a=1", b"b=2"]     # repeated fields kept in order
    assert values(f.head, b"Content-Length") == [b"5"]
    assert values(f.head, b"Connection") == []
    assert values(f.head, b"Transfer-Encoding") == []
    assert f.status == 200 and f.mode == LENGTH and f.keep_alive


@pytest.mark.parametrize("server", [None, b""])
def test_no_server_header(server) -> None:
    f = frame(server=server, headers=[("Content-Length", "0")])
    assert values(f.head, b"Server") == []


def test_status_line_is_passed_through_with_reason() -> None:
    f = frame(status="404 Not Here", headers=[("Content-Length", "0")])
    assert f.head.startswith(b"HTTP/1.1 404 Not Here\r\n")
    assert f.status == 404
    f = frame(status="599 ", headers=[("Content-Length", "0")])
    assert f.head.startswith(b"HTTP/1.1 599 \r\n")


def test_header_values_with_htab_and_latin1_are_kept() -> None:
    f = frame(headers=[("X-A", "a\tb"), ("X-Latin", "caf\xe9"), ("Content-Length", "0")])
    assert values(f.head, b"X-A") == [b"a\tb"]
    assert values(f.head, b"X-Latin") == [b"caf\xe9"]


# -- bodyless responses -----------------------------------------------------------------------

def test_head_keeps_content_length_and_has_no_body() -> None:
    f = frame("HEAD", headers=[("Content-Length", "42")])
    assert f.mode == NO_BODY
    assert values(f.head, b"Content-Length") == [b"42"]
    assert values(f.head, b"Transfer-Encoding") == []
    assert f.encode(b"x" * 42) == b""
    assert f.allowance(42) == 0
    assert f.end() == b""
    assert not f.short and not f.truncated
    assert f.keep_alive


def test_head_without_length_is_not_chunked() -> None:
    f = frame("HEAD")
    assert f.mode == NO_BODY
    assert values(f.head, b"Transfer-Encoding") == []
    assert values(f.head, b"Content-Length") == []
    assert f.keep_alive and values(f.head, b"Connection") == []
    assert f.encode(b"dropped") == b"" and f.end() == b""


def test_head_on_http10_keeps_the_connection() -> None:
    f = frame("HEAD", "HTTP/1.0", keep_alive=True)
    assert f.mode == NO_BODY and f.keep_alive
    assert values(f.head, b"Connection") == [b"keep-alive"]


@pytest.mark.parametrize("status", ["204 No Content", "100 Continue", "101 Switching Protocols",
                                    "103 Early Hints"])
def test_204_and_1xx_have_no_body_and_no_length(status) -> None:
    f = frame(status=status, headers=[("Content-Length", "10")])
    assert f.mode == NO_BODY
    assert values(f.head, b"Content-Length") == []
    assert values(f.head, b"Transfer-Encoding") == []
    assert f.encode(b"data") == b"" and f.end() == b""
    assert not f.short
    assert f.keep_alive


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified", "100 Continue"])
def test_bodyless_status_without_length_is_not_chunked(status) -> None:
    for version in ("HTTP/1.1", "HTTP/1.0"):
        f = frame(status=status, version=version)
        assert f.mode == NO_BODY
        assert values(f.head, b"Transfer-Encoding") == []
        assert f.keep_alive       # no body, so nothing forces a close


def test_304_keeps_content_length_and_has_no_body() -> None:
    f = frame(status="304 Not Modified", headers=[("Content-Length", "99")])
    assert f.mode == NO_BODY
    assert values(f.head, b"Content-Length") == [b"99"]
    assert f.encode(b"x") == b"" and not f.short


# -- body framing ---------------------------------------------------------------------------

def test_chunked_on_http11_without_length() -> None:
    f = frame()
    assert f.mode == CHUNKED
    assert values(f.head, b"Transfer-Encoding") == [b"chunked"]
    assert values(f.head, b"Content-Length") == []
    assert f.keep_alive
    assert f.encode(b"hello") == b"5\r\nhello\r\n"
    assert f.encode(b"") == b""                      # an empty chunk would end the body
    assert f.encode(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert f.encode(b"y" * 4096) == b"1000\r\n" + b"y" * 4096 + b"\r\n"
    assert f.sent == 5 + 255 + 4096
    assert f.allowance(10) == 10
    assert f.end() == b"0\r\n\r\n"
    assert not f.short and not f.truncated


def test_chunk_gives_the_framing_around_the_data_itself() -> None:
    f = frame()
    data = b"z" * 70_000
    size_line, same, crlf = f.chunk(data)
    assert (size_line, crlf) == (b"11170\r\n", b"\r\n")
    assert same is data                              # not copied
    assert f.chunk(b"") == ()                        # an empty chunk would end the body
    assert b"".join(f.chunk(b"hello")) == f.encode(b"hello") == b"5\r\nhello\r\n"
    assert f.sent == 70_000 + 5 + 5


def test_close_delimited_on_http10_without_length() -> None:
    f = frame(version="HTTP/1.0", keep_alive=True)
    assert f.mode == CLOSE
    assert not f.keep_alive
    assert values(f.head, b"Connection") == [b"close"]
    assert values(f.head, b"Transfer-Encoding") == []
    assert f.encode(b"raw bytes") == b"raw bytes"
    assert f.allowance(10**9) == 10**9
    assert f.end() == b""
    assert f.sent == 9 and not f.short


def test_content_length_on_http10_keep_alive() -> None:
    f = frame(version="HTTP/1.0", keep_alive=True, headers=[("Content-Length", "3")])
    assert f.mode == LENGTH and f.keep_alive
    assert values(f.head, b"Connection") == [b"keep-alive"]


def test_content_length_on_http10_close() -> None:
    f = frame(version="HTTP/1.0", keep_alive=False, headers=[("Content-Length", "3")])
    assert f.mode == LENGTH and not f.keep_alive
    assert values(f.head, b"Connection") == [b"close"]


def test_http11_close_requested() -> None:
    f = frame(keep_alive=False)
    assert f.mode == CHUNKED and not f.keep_alive
    assert values(f.head, b"Connection") == [b"close"]


def test_content_length_truncates_extra_bytes() -> None:
    f = frame(headers=[("Content-Length", "5")])
    assert f.mode == LENGTH and f.content_length == 5
    assert f.encode(b"abc") == b"abc"
    assert f.short and not f.truncated
    assert f.encode(b"defgh") == b"de"
    assert f.truncated and not f.short
    assert f.encode(b"more") == b""
    assert f.sent == 5
    assert f.end() == b""


def test_content_length_exact_is_neither_short_nor_truncated() -> None:
    f = frame(headers=[("Content-Length", "4")])
    assert f.encode(b"ab") + f.encode(b"cd") == b"abcd"
    assert not f.short and not f.truncated


def test_content_length_short_when_fewer_bytes() -> None:
    f = frame(headers=[("Content-Length", "10")])
    f.encode(b"123")
    assert f.short
    f = frame(headers=[("Content-Length", "10")])
    assert f.short                                  # nothing sent at all
    f = frame(headers=[("Content-Length", "0")])
    assert not f.short
    assert f.encode(b"x") == b"" and f.truncated


def test_allowance_for_length() -> None:
    f = frame(headers=[("Content-Length", "10")])
    assert f.allowance(4) == 4 and not f.truncated
    assert f.allowance(10) == 10 and not f.truncated
    assert f.allowance(11) == 10 and f.truncated
    f.encode(b"x" * 8)
    assert f.allowance(5) == 2


def test_repeated_equal_content_length_is_sent_once() -> None:
    f = frame(headers=[("Content-Length", "7"), ("content-length", " 7 ")])
    assert values(f.head, b"Content-Length") == [b"7"]
    assert f.content_length == 7


def test_content_length_whitespace_is_trimmed() -> None:
    f = frame(headers=[("Content-Length", " 12 ")])
    assert f.content_length == 12
    assert values(f.head, b"Content-Length") == [b"12"]


# -- Connection and hop-by-hop fields -------------------------------------------------------

@pytest.mark.parametrize("name,value", [
    ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("Proxy-Authenticate", "Basic"),
    ("Proxy-Authorization", "Basic eA=="), ("TE", "trailers"), ("Trailer", "X-Sum"),
    ("Trailers", "X-Sum"), ("Transfer-Encoding", "chunked"), ("Upgrade", "websocket"),
    ("transfer-encoding", "gzip"), ("CONNECTION", "upgrade"),
])
def test_hop_by_hop_fields_from_the_app_are_dropped(name, value) -> None:
    for version in ("HTTP/1.1", "HTTP/1.0"):
        f = frame(version=version, headers=[(name, value), ("Content-Length", "1")])
        own = [b"keep-alive"] if (name.lower(), version) == ("connection", "HTTP/1.0") else []
        assert values(f.head, name.encode()) == own      # only what the framer adds itself
        assert value.encode() not in f.head or value == "keep-alive"
        assert f.mode == LENGTH and f.keep_alive
    f = frame(headers=[(name, value)])                      # our own chunked framing only
    assert values(f.head, b"Transfer-Encoding") == [b"chunked"]
    assert f.mode == CHUNKED


@pytest.mark.parametrize("value", ["close", "Close", "CLOSE", "keep-alive, close"])
def test_connection_close_from_the_app_is_honoured(value) -> None:
    for version in ("HTTP/1.1", "HTTP/1.0"):
        f = frame(version=version, keep_alive=True,
                  headers=[("Connection", value), ("Content-Length", "2")])
        assert not f.keep_alive
        assert values(f.head, b"Connection") == [b"close"]


def test_connection_keep_alive_from_the_app_does_not_override_close() -> None:
    f = frame(keep_alive=False, headers=[("Connection", "keep-alive"), ("Content-Length", "2")])
    assert not f.keep_alive
    assert values(f.head, b"Connection") == [b"close"]


# -- invalid application input ----------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    [("X-A", "a\r\nSet-Cookie: evil=1")],
    [("X-A", "a\rb")],
    [("X-A", "a\nb")],
    [("X-A", "a\x00b")],
    [("X-A", "\x01")],
    [("X-A", "a\x7f")],
    [("X-A", "\x1b[31m")],
], ids=["crlf", "cr", "lf", "nul", "ctl", "del", "escape"])
def test_control_characters_in_values_are_refused(headers) -> None:
    with pytest.raises(ValueError):
        frame(headers=headers)


def test_values_are_checked_each_time_under_a_known_name() -> None:
    """A name checked once is remembered; its values are still checked every time, also
    when a response with different values misses the cache of whole heads."""
    frame(headers=[("X-Known", "fine"), ("ETag", '"1"')])
    for value in ("a\r\nSet-Cookie: evil=1", "a\x00", "\u20ac"):
        with pytest.raises(ValueError):
            frame(headers=[("X-Known", value), ("ETag", '"2"')])
    with pytest.raises(ValueError):
        frame(status="200 OK\r\n", headers=[("X-Known", "fine")])


@pytest.mark.parametrize("name", ["Bad Name", "X:Y", "", "X-A\r\n", "X\tA", "(x)", "X@A",
                                  "Caf\xe9", "\u20ac"])
def test_non_token_names_are_refused(name) -> None:
    with pytest.raises(ValueError):
        frame(headers=[(name, "v")])


@pytest.mark.parametrize("value", ["\u20ac", "caf\xe9\u2603", "\U0001f600"])
def test_non_latin1_values_are_refused(value) -> None:
    with pytest.raises(ValueError):
        frame(headers=[("X-A", value)])


@pytest.mark.parametrize("pair", [(b"X-A", "v"), ("X-A", b"v"), ("X-A", 5), (None, "v")])
def test_non_str_headers_are_refused(pair) -> None:
    with pytest.raises(ValueError):
        frame(headers=[pair])


@pytest.mark.parametrize("value", ["abc", "-1", "+5", "", "1.5", "0x10", "1 2", "\xb2", "\u0663"])
def test_invalid_content_length_is_refused(value) -> None:
    with pytest.raises(ValueError):
        frame(headers=[("Content-Length", value)])


def test_differing_content_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        frame(headers=[("Content-Length", "5"), ("Content-Length", "6")])


@pytest.mark.parametrize("status", ["200", "OK", "20 OK", "2000 OK", "099 Low", " 200 OK",
                                    "200\tOK", "200 OK\r\n", "200 O\nK", "200 \x00",
                                    "200 \u20ac", "abc OK", ""])
def test_bad_status_lines_are_refused(status) -> None:
    with pytest.raises(ValueError):
        frame(status=status)
    with pytest.raises(ValueError):
        parse_status(status)


@pytest.mark.parametrize("status", [200, b"200 OK", None])
def test_non_str_status_is_refused(status) -> None:
    with pytest.raises(ValueError):
        frame(status=status)


@pytest.mark.parametrize("status,code", [("200 OK", 200), ("404 Not Found", 404),
                                         ("100 Continue", 100), ("599 Custom", 599),
                                         ("418 I'm a teapot", 418), ("200 Caf\xe9", 200)])
def test_parse_status(status, code) -> None:
    assert parse_status(status) == code


# -- Date -------------------------------------------------------------------------------------

def test_date_header_is_an_imf_fixdate() -> None:
    f = frame()
    (date,) = values(f.head, b"Date")
    assert IMF_FIXDATE.fullmatch(date), date
    assert IMF_FIXDATE.fullmatch(http_date())


def test_date_is_cached_per_second(monkeypatch) -> None:
    clock = FakeClock(1_700_000_000.25)   # Tue, 14 Nov 2023 22:13:20 GMT
    calls = []
    real_formatdate = response_mod.formatdate

    def counting_formatdate(*args, **kwargs):
        calls.append(args)
        return real_formatdate(*args, **kwargs)

    monkeypatch.setattr(response_mod, "time", clock)
    monkeypatch.setattr(response_mod, "formatdate", counting_formatdate)
    monkeypatch.setattr(response_mod, "_date_cache", [0, b""])

    first = http_date()
    assert first == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert http_date() is first
    clock.now += 0.7                         # same second
    assert http_date() is first
    assert values(frame().head, b"Date") == [first]
    assert len(calls) == 1

    clock.now += 0.1                         # next second
    second = http_date()
    assert second == b"Tue, 14 Nov 2023 22:13:21 GMT"
    assert len(calls) == 2
    assert values(frame().head, b"Date") == [second]
    assert len(calls) == 2
