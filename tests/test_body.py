"""BodyReceiver (wsgiloop/body.py) on its own, against its docstring's promises, with a
real parser; how a connection uses it is tested through real sockets in
tests/test_connection.py and tests/test_spool.py."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest

from wsgiloop.body import BodyReceiver, close_body
from wsgiloop.delegate import Request
from wsgiloop.http import HTTPLimits, ProtocolError, RequestHead, RequestParser
from wsgiloop.params import ConnectionParameters

PEER = ("192.0.2.7", 4321)


def _request(head_bytes: bytes, limits: HTTPLimits | None = None
             ) -> tuple[RequestParser, Request]:
    parser = RequestParser(limits or HTTPLimits())
    parser.feed(head_bytes)
    head = parser.next_event()
    assert type(head) is RequestHead
    connection = SimpleNamespace(peer=PEER, sockname=("192.0.2.1", 80), scheme="http",
                                 delegate_data={})
    return parser, Request(head, connection)  # type: ignore[arg-type]


def test_a_body_is_given_whole_to_the_request(tmp_path):
    receiver = BodyReceiver(ConnectionParameters(spool_threshold=8,
                                                 spool_dir=str(tmp_path)), PEER)
    _, small = _request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
    receiver.begin(1.0)
    receiver.add(b"hel")
    receiver.add(b"lo")
    receiver.take(small)
    assert isinstance(small.body, io.BytesIO)
    assert (small.body.read(), small.body_length) == (b"hello", 5)

    _, large = _request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n")
    receiver.begin(2.0)
    receiver.add(b"0123456789ab")
    receiver.take(large)
    assert not isinstance(large.body, io.BytesIO)  # the temporary file
    assert (large.body.read(), large.body_length) == (b"0123456789ab", 12)
    close_body(large)
    close_body(small)
    assert large.body.closed and not small.body.closed


def test_begin_drops_what_the_last_body_left():
    receiver = BodyReceiver(ConnectionParameters(), PEER)
    _, request = _request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n")
    receiver.begin(0.0)
    receiver.add(b"stale")
    receiver.begin(1.0)
    receiver.add(b"new")
    receiver.take(request)
    assert (request.body.read(), request.body_length) == (b"new", 3)


def test_deadline_is_the_sooner_of_no_progress_and_too_slow():
    params = ConnectionParameters(body_timeout=10.0, body_min_rate=100)
    receiver = BodyReceiver(params, PEER)
    assert receiver.begin(50.0) == 60.0
    receiver.progress = 59.0
    receiver.add(b"x" * 500)  # lasts 5 s at 100 B/s: body_timeout since the start wins
    assert receiver.deadline() == 60.0
    assert receiver.late(61.0) == "request body too slow (500 bytes in 11s)"
    receiver.add(b"x" * 1500)  # 2,000 bytes last 20 s
    assert receiver.deadline() == 69.0  # no progress since 59
    assert receiver.late(69.0) == "request body timed out"

    unlimited = BodyReceiver(ConnectionParameters(body_timeout=10.0, body_min_rate=0), PEER)
    unlimited.begin(0.0)
    unlimited.progress = 30.0
    assert unlimited.deadline() == 40.0


def test_a_body_that_cannot_be_stored_is_503_and_one_log_line(tmp_path, caplog):
    missing = str(tmp_path / "gone")
    receiver = BodyReceiver(ConnectionParameters(spool_threshold=0, spool_dir=missing), PEER)
    receiver.begin(0.0)
    with caplog.at_level(logging.ERROR, "wsgiloop.error"), \
            pytest.raises(ProtocolError) as raised:
        receiver.add(b"abc")
    assert raised.value.status == 503
    [record] = caplog.records
    assert "cannot spool the request body from" in record.getMessage()
    assert str(PEER) in record.getMessage() and missing in record.getMessage()
    receiver.discard()  # nothing left to drop; harmless


def test_a_deferred_body_is_pumped_from_the_parser_and_ended_once():
    receiver = BodyReceiver(ConnectionParameters(), PEER)
    parser, request = _request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                               b"Expect: 100-continue\r\n\r\n")
    told: list = []
    assert not receiver.deferred
    assert receiver.defer(request, told.append, 7.0) == 7.0 + 30.0
    assert receiver.deferred
    assert receiver.pump(parser) is False  # nothing yet
    parser.feed(b"he")
    assert receiver.pump(parser) is False
    parser.feed(b"llo")
    assert receiver.pump(parser) is True
    finished, error = receiver.end(None)  # type: ignore[misc]
    assert (finished, error) == (told.append, None)
    assert (request.body.read(), request.body_length) == (b"hello", 5)
    assert not receiver.deferred and receiver.end(None) is None  # once


def test_a_deferred_body_over_its_limit_is_a_protocol_error_kept_on_the_request():
    receiver = BodyReceiver(ConnectionParameters(), PEER)
    parser, request = _request(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                               b"Expect: 100-continue\r\n\r\n",
                               HTTPLimits(max_body_size=4))
    receiver.defer(request, print, 0.0)
    parser.feed(b"8\r\n12345678\r\n0\r\n\r\n")
    with pytest.raises(ProtocolError) as raised:
        receiver.pump(parser)
    assert raised.value.status == 413
    finished, error = receiver.end(raised.value)  # type: ignore[misc]
    assert finished is print and error is raised.value
    assert request.protocol_error is raised.value and request.body is None
    gone = ConnectionError("the client has gone")
    receiver.defer(request, print, 1.0)
    assert receiver.end(gone) == (print, gone)  # not a protocol error: not kept
    assert request.protocol_error is raised.value
