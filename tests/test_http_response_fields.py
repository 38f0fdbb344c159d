"""The response head's fields without a memo (wsgiloop.http.response.frame_head).

frame_head takes the common head in one pass and hands any other to ``_general_fields``,
which holds every rule.  These tests pin the rules on both roads: the fixed tables the one
pass relies on, the inputs that must leave it, a differential test (every generated head
framed normally and with the one pass switched off must give the same answer, bytes or
ValueError), and that framing remembers nothing from one response to the next.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsgiloop.http import response as response_mod
from wsgiloop.http.response import (
    CHUNKED,
    LENGTH,
    NO_BODY,
    _general_fields,
    _status_line,
    frame_head,
    parse_status,
)


def head(status="200 OK", headers=(), method="GET", version="HTTP/1.1", keep_alive=True,
         server=b"wsgiloop", body_length=None):
    return frame_head(method, version, keep_alive, status, list(headers), server, body_length)


def fields(result) -> list[bytes]:
    """The field lines of a head, Date left out."""
    lines = result[4].split(b"\r\n")
    assert lines[-2:] == [b"", b""]
    return [line for line in lines[1:-2] if not line.startswith(b"Date: ")]


# -- the fixed tables ---------------------------------------------------------------------

def test_plain_names_are_tokens_and_no_special_field() -> None:
    for name in response_mod._PLAIN_NAMES:
        assert response_mod._TOKEN_RE.fullmatch(name), name
        assert name.lower() not in response_mod._SPECIAL_NAMES, name


def test_length_names_are_content_length() -> None:
    assert {name.lower() for name in response_mod._LENGTH_NAMES} == {"content-length"}


def test_standard_status_lines_agree_with_the_parser() -> None:
    assert "200 OK" in response_mod._STATUS_LINES and "404 Not Found" in response_mod._STATUS_LINES
    for line, described in response_mod._STATUS_LINES.items():
        assert described == _status_line(parse_status(line), line)
        assert described[1] == b"HTTP/1.1 " + line.encode() + b"\r\n"


@pytest.mark.parametrize("status,no_body,no_length", [
    ("100 Continue", True, True), ("204 No Content", True, True),
    ("304 Not Modified", True, False), ("200 OK", False, False), ("404 Gone Away", False, False),
])
def test_status_line_description(status, no_body, no_length) -> None:
    code, line, body_less, length_less = _status_line(parse_status(status), status)
    assert (code, line) == (int(status[:3]), f"HTTP/1.1 {status}\r\n".encode())
    assert (body_less, length_less) == (no_body, no_length)


# -- what the one pass must not wave through ----------------------------------------------

@pytest.mark.parametrize("name", ["Content-Type", "X-Unknown-Name", "Content-Length"])
@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: evil=1", "a\rb", "a\nb", "a\x00b", "\x7f",
                                   "\x1b[0m"])
def test_control_characters_are_refused_under_any_name(name, value) -> None:
    with pytest.raises(ValueError):
        head(headers=[(name, value)])


@pytest.mark.parametrize("name", ["Content-Type", "X-Unknown-Name"])
@pytest.mark.parametrize("value", ["\u20ac", "caf\xe9\u2603", "\U0001f600"])
def test_non_latin1_values_are_refused_under_any_name(name, value) -> None:
    with pytest.raises(ValueError, match="latin-1"):
        head(headers=[(name, value)])


@pytest.mark.parametrize("name", ["Content-Type ", " Content-Type", "Content-Type:", "ETag\r\n",
                                  "Set Cookie", "X-A\x00", "Vary\t", "", "-", "Ä", "X-\u20ac"])
def test_names_next_to_known_ones_are_refused(name) -> None:
    if name == "-":  # a lone dash is a token
        assert fields(head(headers=[(name, "v")]))[1:] == [b"-: v", b"Transfer-Encoding: chunked"]
        return
    with pytest.raises(ValueError):
        head(headers=[(name, "v")])


@pytest.mark.parametrize("pair", [
    ["Content-Type", "text/plain"],      # a list, not a tuple
    "ab",                                # a two-character string
    ("Content-Type", "text/plain", "x"),
    ("Content-Type",),
    (),
    ("Content-Type", None),
    (b"Content-Type", "text/plain"),
    ("Content-Type", b"text/plain"),
])
def test_pairs_that_are_not_two_str_are_refused(pair) -> None:
    with pytest.raises(ValueError):
        head(headers=[("Vary", "Cookie"), pair])


def test_str_subclasses_are_refused() -> None:
    class Text(str):
        def __str__(self) -> str:
            return "injected\r\nX: y"

        __format__ = None  # type: ignore[assignment]

    with pytest.raises(ValueError):
        head(headers=[(Text("Content-Type"), "text/plain")])
    with pytest.raises(ValueError):
        head(headers=[("Content-Type", Text("text/plain"))])


@pytest.mark.parametrize("value", ["\u0661\u0662", "\xb2", "1_0", " ", "+1", "0x1"])
def test_odd_content_lengths_are_refused(value) -> None:
    for name in ("Content-Length", "content-length", "Content-length"):
        with pytest.raises(ValueError):
            head(headers=[(name, value)])


@pytest.mark.parametrize("body_length", [None, 3, 4])
def test_content_length_against_the_body_at_hand(body_length) -> None:
    result = head(headers=[("Content-Length", "3")], body_length=body_length)
    assert result[1:3] == (LENGTH, 3) and fields(result)[1:] == [b"Content-Length: 3"]
    for value in ("None", "03", "3 3", "3.0"):
        if value == "03":
            assert head(headers=[("Content-Length", value)], body_length=body_length)[2] == 3
            continue
        with pytest.raises(ValueError):
            head(headers=[("Content-Length", value)], body_length=body_length)


def test_a_content_length_spelled_oddly_is_still_the_length() -> None:
    result = head(headers=[("Content-length", "3")])
    assert result[1:3] == (LENGTH, 3)
    assert fields(result) == [b"Server: wsgiloop", b"Content-length: 3"]


@pytest.mark.parametrize("first,second", [("Content-Length", "content-length"),
                                          ("CONTENT-LENGTH", "Content-length")])
def test_repeated_content_length(first, second) -> None:
    result = head(headers=[(first, "4"), ("Vary", "Cookie"), (second, "4")])
    assert result[1:3] == (LENGTH, 4)
    assert fields(result) == [b"Server: wsgiloop", f"{first}: 4".encode(), b"Vary: Cookie"]
    with pytest.raises(ValueError):
        head(headers=[(first, "4"), (second, "5")])


@pytest.mark.parametrize("name", ["Connection", "connection", "Keep-Alive", "TE", "Trailer",
                                  "Transfer-Encoding", "transfer-encoding", "Upgrade",
                                  "Proxy-Authenticate", "pRoXy-AuThOrIzAtIoN", "Trailers"])
def test_hop_by_hop_fields_never_reach_the_wire(name) -> None:
    result = head(headers=[("Content-Type", "text/plain"), (name, "x"), ("Content-Length", "1")])
    assert fields(result) == [b"Server: wsgiloop", b"Content-Type: text/plain",
                              b"Content-Length: 1"]


@pytest.mark.parametrize("name", ["Date", "date", "DATE"])
def test_the_application_date_is_kept_and_not_doubled(name) -> None:
    result = head(headers=[(name, "Thu, 01 Jan 1970 00:00:00 GMT")], server=None)
    lines = result[4].split(b"\r\n")
    assert lines[1:] == [f"{name}: Thu, 01 Jan 1970 00:00:00 GMT".encode(),
                         b"Transfer-Encoding: chunked", b"", b""]


def test_values_with_tab_and_latin1_unprintables_are_kept() -> None:
    result = head(headers=[("Content-Type", "a\tb"), ("X-A", "\xa0\xad\x85")])
    assert fields(result)[1:3] == [b"Content-Type: a\tb", b"X-A: \xa0\xad\x85"]


def test_length_on_204_and_1xx_is_dropped_but_kept_on_304_and_head() -> None:
    for status in ("204 No Content", "103 Early Hints", "204 Nothing"):
        result = head(status, [("Content-Length", "7")])
        assert result[1:3] == (NO_BODY, 7) and fields(result) == [b"Server: wsgiloop"]
    assert fields(head("304 Not Modified", [("Content-Length", "7")]))[1:] == [
        b"Content-Length: 7"]
    assert fields(head(headers=[("Content-Length", "7")], method="HEAD"))[1:] == [
        b"Content-Length: 7"]


def test_non_standard_status_lines_take_the_general_road() -> None:
    result = head("299 Fine\tthanks", [("Content-Length", "0")])
    assert result[0] == 299 and result[4].startswith(b"HTTP/1.1 299 Fine\tthanks\r\n")
    for status in ("200 OK\r\n", "200 \u20ac", ["200 OK"], 200, "200  OK\x00"):
        with pytest.raises(ValueError):
            head(status, [("Content-Length", "0")])


# -- the one pass and the general road agree ----------------------------------------------

# Mostly heads the one pass takes, with now and then one thing it must hand on.
PLAIN_NAMES = ["Content-Type", "content-type", "ETag", "Vary", "Set-Cookie", "Cache-Control",
               "X-Request-Id", "X-Custom", "x_under", "Weird!#$%&'*+.^`|~"]
ODD_NAMES = ["Content-Length", "content-length", "CONTENT-LENGTH", "Content-length", "Date",
             "date", "Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Upgrade", "Trailer",
             "Bad Name", "X:Y", "", "Caf\xe9", "X\r\nY", "Vary "]


def mostly(usual: st.SearchStrategy, odd: st.SearchStrategy, odds: int) -> st.SearchStrategy:
    """``odd`` about once in ``odds`` draws, else ``usual``."""
    return st.integers(1, odds).flatmap(lambda i: odd if i == 1 else usual)


NAMES = mostly(st.sampled_from(PLAIN_NAMES), st.sampled_from(ODD_NAMES), 5)
PLAIN_VALUES = ["text/plain", "12", "0", "007", "", '"abc"', "no-cache", "1.5", "caf\xe9"]
ODD_VALUES = [" 12 ", "None", "close", "Keep-Alive, Close", "a\tb", "\u20ac", "a\r\nb", "\x00",
              "\xa0", "\u0661", "\x85", "\x1b"]
VALUES = mostly(st.one_of(st.sampled_from(PLAIN_VALUES),
                          st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff),
                                  max_size=6)),
                st.sampled_from(ODD_VALUES), 6)
FIELDS = st.tuples(NAMES, VALUES)
ODD_PAIRS = st.one_of(FIELDS.map(list), st.sampled_from(
    [("X-A",), ("X-A", "b", "c"), "ab", ("X-A", 5), (b"X-A", "v"), ("ETag", None)]))
PAIRS = mostly(FIELDS, ODD_PAIRS, 20)
STATUSES = mostly(
    st.sampled_from(["200 OK", "204 No Content", "304 Not Modified", "404 Not Found",
                     "101 Switching Protocols", "103 Early Hints"]),
    st.sampled_from(["299 Custom", "200", "OK", "200 OK\r\n", "599 ", "200 Caf\xe9",
                     "200 \u20ac", "200\tOK"]), 6)


def general_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the one pass off: every head goes through _general_fields."""
    monkeypatch.setattr(response_mod, "_PLAIN_NAMES", frozenset())
    monkeypatch.setattr(response_mod, "_LENGTH_NAMES", frozenset())
    monkeypatch.setattr(response_mod, "_plain_name", lambda name: False)


def outcome(*args) -> object:
    try:
        return frame_head(*args)
    except ValueError:
        return ValueError


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(status=STATUSES, headers=st.lists(PAIRS, max_size=4),
       method=st.sampled_from(["GET", "HEAD"]), version=st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
       keep_alive=st.booleans(), server=st.sampled_from([b"wsgiloop", None]),
       body_length=st.sampled_from([None, 0, 12]))
def test_the_one_pass_agrees_with_the_general_road(status, headers, method, version, keep_alive,
                                                   server, body_length) -> None:
    args = (method, version, keep_alive, status, headers, server, body_length)
    fast = outcome(*args)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(response_mod, "_date_cache", list(response_mod._date_cache))
        general_only(monkeypatch)
        slow = outcome(*args)
    if fast is not ValueError and slow is not ValueError:  # the same second, or not
        fast, slow = fast[:4] + (fields(fast),), slow[:4] + (fields(slow),)
    assert fast == slow


def test_general_fields_is_what_the_one_pass_does() -> None:
    line, text, length, closes, has_date = _general_fields(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    assert line == response_mod._STATUS_LINES["200 OK"]
    assert text == "Content-Type: text/plain\r\nContent-Length: 12\r\n"
    assert (length, closes, has_date) == (12, False, False)


# -- nothing is remembered ------------------------------------------------------------------

def module_state() -> dict[str, int]:
    return {name: len(value) for name, value in vars(response_mod).items()
            if isinstance(value, (dict, list, set)) and not name.startswith("__")}


def test_framing_remembers_nothing() -> None:
    head()  # the Date value, which is the clock's
    before = module_state()
    for i in range(300):
        result = head(headers=[("Content-Type", "text/html"), ("Content-Length", str(i)),
                               ("ETag", f'"{i:x}"'), (f"X-Field-{i}", "v")],
                      body_length=i)
        assert result[1:3] == (LENGTH, i)
        head(f"2{i % 100:02d} Status {i}", [("Date", str(i))])
        with pytest.raises(ValueError):
            head(headers=[("X-A", f"{i}\r\n")])
    assert module_state() == before
    assert head(headers=[("Vary", "Cookie")])[1] == CHUNKED
