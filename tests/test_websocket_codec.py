"""The sans-I/O WebSocket codec (wsgiloop.http.websocket) on its own: the same events
however the bytes are cut, unmasking, the server's frames, close payloads, and the
parsing of extension offers."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsframes import BINARY, CONT, PING, TEXT, deflate_message, frame

from wsgiloop.http.websocket import (
    CLOSE,
    FrameReader,
    PerMessageDeflate,
    WebSocketError,
    accept_key,
    close_code_allowed,
    close_payload,
    encode_frame,
    frame_header,
    negotiate_deflate,
    parse_extensions,
    unmask,
)

messages = st.lists(st.one_of(
    st.tuples(st.just(TEXT), st.text(max_size=300)),
    st.tuples(st.just(BINARY), st.binary(max_size=5000)),
    st.tuples(st.just(PING), st.binary(max_size=125)),
), min_size=1, max_size=8)


def encode(kind, value, pieces):
    data = value.encode() if kind == TEXT else value
    if kind == PING or pieces == 1:
        return frame(kind, data)
    size = len(data) // pieces + 1
    parts = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
    return b"".join(frame(kind if i == 0 else CONT, part, fin=i == len(parts) - 1)
                    for i, part in enumerate(parts))


def read_all(reader, chunks):
    events = []
    for chunk in chunks:
        reader.feed(chunk)
        while (event := reader.next_event()) is not None:
            events.append(event)
    return events


@settings(max_examples=60, deadline=None)
@given(messages, st.integers(1, 4), st.data())
def test_events_do_not_depend_on_how_the_bytes_are_cut(sent, pieces, data):
    wire = b"".join(encode(kind, value, pieces) for kind, value in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    chunks = [wire[a:b] for a, b in zip([0] + cuts, cuts + [len(wire)], strict=True)]
    assert read_all(FrameReader(1 << 20), chunks) == list(sent)
    assert read_all(FrameReader(1 << 20), [wire]) == list(sent)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 4095, 4096, 4097, 70_001])
def test_unmask_is_xor_with_the_repeated_key(size):
    key, data = os.urandom(4), os.urandom(size)
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert unmask(key, data) == expected
    assert unmask(key, expected) == data


@pytest.mark.parametrize("size, header", [
    (0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
    (65535, b"\x81\x7e\xff\xff"), (65536, b"\x81\x7f" + (65536).to_bytes(8, "big")),
])
def test_server_frames_use_the_shortest_length(size, header):
    assert encode_frame(TEXT, b"a" * size) == header + b"a" * size
    assert frame_header(TEXT, size) == header
    assert frame_header(BINARY, size, rsv1=True)[0] == 0x80 | 0x40 | BINARY


def test_accept_key_of_rfc_6455():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_close_payload_is_cut_on_a_character_boundary():
    payload = close_payload(1000, "€" * 100)  # 300 bytes of UTF-8
    assert len(payload) <= 125
    assert payload[:2] == b"\x03\xe8"
    assert payload[2:].decode("utf-8") == "€" * 41
    assert close_payload(None) == b""


def test_close_codes():
    allowed = [c for c in range(0, 5001) if close_code_allowed(c)]
    assert allowed[:12] == [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                            1013, 1014]
    assert allowed[12] == 3000 and allowed[-1] == 4999 and len(allowed) == 12 + 2000


def test_the_reader_gives_nothing_after_a_close():
    reader = FrameReader(1000)
    reader.feed(frame(CLOSE, b"\x03\xe8bye") + frame(TEXT, b"after"))
    assert reader.next_event() == (CLOSE, (1000, "bye"))
    assert reader.next_event() is None
    reader.feed(frame(TEXT, b"more"))
    assert reader.next_event() is None


def test_a_dead_reader_stays_dead():
    reader = FrameReader(1000)
    reader.feed(frame(TEXT, b"\xff"))
    with pytest.raises(WebSocketError) as caught:
        reader.next_event()
    assert caught.value.code == 1007
    reader.feed(frame(TEXT, b"fine"))
    assert reader.next_event() is None


def test_deflate_round_trip_and_the_inflate_limit():
    deflate = PerMessageDeflate()
    inflater = zlib.decompressobj(-15)
    for text in (b"", b"a", b"hello " * 1000):
        assert inflater.decompress(deflate.compress(text) + b"\x00\x00\xff\xff") == text
    reader = FrameReader(1000, PerMessageDeflate())
    reader.feed(frame(BINARY, deflate_message(b"z" * 1000), rsv=4))
    assert reader.next_event() == (BINARY, b"z" * 1000)
    reader.feed(frame(BINARY, deflate_message(b"z" * 1001), rsv=4))
    with pytest.raises(WebSocketError) as caught:
        reader.next_event()
    assert caught.value.code == 1009


def test_parse_extensions():
    assert parse_extensions(['permessage-deflate; client_max_window_bits; '
                             'server_max_window_bits="10", x-foo',
                             "PerMessage-Deflate"]) == [
        ("permessage-deflate", [("client_max_window_bits", None),
                                ("server_max_window_bits", "10")]),
        ("x-foo", []),
        ("permessage-deflate", []),
    ]
    assert parse_extensions(["permessage-deflate; bad param"]) == []


def test_deflate_options_are_checked():
    with pytest.raises(ValueError, match="compresion_level"):
        negotiate_deflate(["permessage-deflate"], {"compresion_level": 1})
    with pytest.raises(ValueError, match="max_window_bits"):
        negotiate_deflate(["permessage-deflate"], {"max_window_bits": 8})
    deflate, text = negotiate_deflate(["permessage-deflate; server_max_window_bits=12"],
                                      {"max_window_bits": 10, "no_context_takeover": True})
    assert text == ("permessage-deflate; server_no_context_takeover; "
                    "server_max_window_bits=10")
    assert negotiate_deflate(["x-other"], {}) is None
