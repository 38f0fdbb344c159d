"""RFC 6455 (and RFC 7692) conformance of the native WebSocket server, over real sockets.

The Autobahn test suite cannot run here: its ``wstest`` needs Python 2.7 (PyPI's
``autobahntestsuite`` installs nowhere else) or its Docker image, and this machine has no
Python 2, no Docker daemon, and reaches only PyPI and apt.  So these cases follow its main
categories, written from the RFCs with a raw client (``wsframes``) that sends any frame a
broken client could:

1. framing (payload lengths at the 7/16/64-bit boundaries, chopped delivery);
2. pings and pongs; 3. reserved bits; 4. reserved opcodes; 5. fragmentation, control
frames inside fragmented messages, fragmented and oversized control frames;
6. UTF-8 in text (invalid sequences fail with 1007, fast, also split across fragments);
7. closing (valid and invalid codes, reasons); 9. limits (1009); masking;
12/13. per-message-deflate round trips and the negotiation of its parameters.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import urllib.request
import zlib

import pytest
from support import ServerProcess
from wsframes import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    RawClient,
    close_frame,
    deflate_message,
    frame,
)

LIMIT = 1 << 16  # websocket_max_message_size of websocket_apps.application


@pytest.fixture(scope="module")
def server():
    with ServerProcess("websocket_apps:application") as server:
        yield server
    assert "Traceback" not in server.log, server.log


@pytest.fixture
def connect(server):
    opened = []

    def connect(path="/echo", **kwargs):
        client = RawClient(server.host, server.port, path, **kwargs)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


def server_events(server):
    with urllib.request.urlopen(server.url + "/events", timeout=5) as response:
        return json.loads(response.read())["events"]


# -- 1. framing --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 128, 65535, 65536])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_echo_at_length_boundaries(connect, size, opcode):
    client = connect()
    payload = b"*" * size
    client.send(frame(opcode, payload))
    assert client.read_message() == (opcode, payload)


def test_a_frame_chopped_into_single_bytes(connect):
    client = connect()
    data = frame(TEXT, "chopped into bytes ✓".encode() * 20)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        client.send(data[i:i + 1])
    assert client.read_message() == (TEXT, "chopped into bytes ✓".encode() * 20)


def test_many_frames_in_one_write_come_back_in_order(connect):
    client = connect()
    client.send(b"".join(frame(TEXT, str(i).encode()) for i in range(200)))
    assert [client.read_message()[1] for _ in range(200)] == [
        str(i).encode() for i in range(200)]


# -- 2. pings and pongs ------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"ping", bytes(range(125))])
def test_ping_is_answered_with_the_same_payload(connect, payload):
    client = connect()
    client.send(frame(PING, payload))
    opcode, fin, rsv, data = client.read_frame()
    assert (opcode, fin, rsv, data) == (PONG, True, 0, payload)


def test_ten_pings_ten_pongs(connect):
    client = connect()
    client.send(b"".join(frame(PING, f"p{i}".encode()) for i in range(10)))
    assert [client.read_frame()[::3] for _ in range(10)] == [
        (PONG, f"p{i}".encode()) for i in range(10)]


def test_an_unsolicited_pong_is_ignored(connect):
    client = connect()
    client.send(frame(PONG, b"unasked") + frame(TEXT, b"after"))
    assert client.read_frame()[::3] == (TEXT, b"after")


def test_a_ping_of_126_bytes_is_a_protocol_error(connect):
    client = connect()
    client.send(frame(PING, b"x" * 126))
    client.expect_close(1002)


# -- 3. reserved bits, 4. reserved opcodes, masking --------------------------------------------

@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
def test_reserved_bits_fail_the_connection(connect, rsv, opcode):
    client = connect()  # no extension negotiated: every reserved bit is an error
    client.send(frame(opcode, b"rsv", rsv=rsv))
    client.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes_fail_the_connection(connect, opcode):
    client = connect()
    client.send(frame(TEXT, b"before") + frame(opcode, b"reserved"))
    assert client.read_message() == (TEXT, b"before")
    client.expect_close(1002)


def test_an_unmasked_client_frame_fails_the_connection(connect):
    client = connect()
    client.send(frame(TEXT, b"bare", mask=False))
    client.expect_close(1002)


def test_a_64_bit_length_with_the_top_bit_set_fails(connect):
    client = connect()
    client.send(bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 63) + b"mask")
    client.expect_close(1002)


# -- 5. fragmentation --------------------------------------------------------------------------

def test_a_fragmented_text_message(connect):
    client = connect()
    client.send(frame(TEXT, b"frag", fin=False) + frame(CONT, b"", fin=False)
                + frame(CONT, b"men", fin=False) + frame(CONT, b"ted"))
    assert client.read_message() == (TEXT, b"fragmented")


def test_a_fragmented_binary_message_one_byte_a_frame(connect):
    client = connect()
    data = bytes(range(256))
    frames = [frame(BINARY if i == 0 else CONT, data[i:i + 1], fin=i == 255)
              for i in range(256)]
    client.send(b"".join(frames))
    assert client.read_message() == (BINARY, data)


def test_control_frames_inside_a_fragmented_message(connect):
    client = connect()
    client.send(frame(TEXT, b"one ", fin=False) + frame(PING, b"in between")
                + frame(CONT, b"two ", fin=False) + frame(PONG, b"ignored")
                + frame(PING, b"again") + frame(CONT, b"three"))
    assert client.read_frame()[::3] == (PONG, b"in between")
    assert client.read_frame()[::3] == (PONG, b"again")
    assert client.read_frame()[::3] == (TEXT, b"one two three")


def test_a_close_inside_a_fragmented_message_closes(connect):
    client = connect()
    client.send(frame(TEXT, b"unfinished", fin=False) + close_frame(1000))
    client.expect_close(1000)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
def test_a_fragmented_control_frame_fails(connect, opcode):
    client = connect()
    client.send(frame(opcode, b"part", fin=False) + frame(CONT, b"rest"))
    client.expect_close(1002)


@pytest.mark.parametrize("frames", [
    [frame(CONT, b"nothing to continue")],
    [frame(CONT, b"nothing to continue", fin=False)],
    [frame(TEXT, b"first", fin=False), frame(TEXT, b"second")],
    [frame(TEXT, b"first", fin=False), frame(BINARY, b"second")],
    [frame(TEXT, b"done"), frame(CONT, b"after the end")],
], ids=["lone-continuation", "lone-continuation-unfinished", "text-in-text",
        "binary-in-text", "continuation-after-end"])
def test_broken_fragment_sequences_fail(connect, frames):
    client = connect()
    client.send(b"".join(frames))
    while True:
        opcode, _, _, payload = client.read_frame()
        if opcode == CLOSE:
            assert struct.unpack("!H", payload[:2])[0] == 1002
            break
        assert opcode == TEXT  # the complete message before the broken frame
    client.expect_eof()


# -- 6. UTF-8 ----------------------------------------------------------------------------------

VALID_TEXT = ["", "ascii", "κόσμε", "€", "\U0001F600 emoji", "\u0800\uFFFD\U0010FFFF"]
INVALID_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",  # a surrogate
    b"\xc0\xaf",            # overlong '/'
    b"\xe0\x80\xaf",        # overlong, three bytes
    b"\xf4\x90\x80\x80",    # above U+10FFFF
    b"\xff", b"\xfe",       # never in UTF-8
    b"\x80",                # a lone continuation byte
    b"abc\xe2\x82",         # cut short at the end of the message
    b"\xed\xbf\xbf",        # U+DFFF
]


@pytest.mark.parametrize("text", VALID_TEXT)
def test_valid_utf8_comes_back(connect, text):
    client = connect()
    client.send(frame(TEXT, text.encode()))
    assert client.read_message() == (TEXT, text.encode())


@pytest.mark.parametrize("data", INVALID_UTF8)
def test_invalid_utf8_fails_with_1007(connect, data):
    client = connect()
    client.send(frame(TEXT, data))
    client.expect_close(1007)


@pytest.mark.parametrize("data", INVALID_UTF8)
def test_invalid_utf8_in_fragments_fails_with_1007(connect, data):
    client = connect()
    client.send(b"".join(frame(TEXT if i == 0 else CONT, data[i:i + 1], fin=i == len(data) - 1)
                         for i in range(len(data))))
    client.expect_close(1007)


def test_a_character_split_between_fragments_is_valid(connect):
    client = connect()
    data = "κόσμε €\U0001F600".encode()
    client.send(b"".join(frame(TEXT if i == 0 else CONT, data[i:i + 1], fin=i == len(data) - 1)
                         for i in range(len(data))))
    assert client.read_message() == (TEXT, data)


def test_invalid_utf8_fails_fast_before_the_message_ends(connect):
    client = connect()
    client.send(frame(TEXT, b"fine so far ", fin=False) + frame(CONT, b"\xff", fin=False))
    # no final fragment was sent: the server failed on the bad one
    client.expect_close(1007)


# -- 7. closing --------------------------------------------------------------------------------

def test_a_close_without_payload_is_answered_without_payload(connect):
    client = connect()
    client.send(close_frame())
    opcode, _, _, payload = client.read_frame()
    assert (opcode, payload) == (CLOSE, b"")
    assert client.sock.recv(10) == b""


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes_are_echoed(connect, code):
    client = connect()
    client.send(close_frame(code, b"bye"))
    opcode, _, _, payload = client.read_frame()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == code
    assert client.sock.recv(10) == b""


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_invalid_close_codes_fail_with_1002(connect, code):
    client = connect()
    client.send(close_frame(code))
    client.expect_close(1002)


def test_a_one_byte_close_payload_fails(connect):
    client = connect()
    client.send(frame(CLOSE, b"\x03"))
    client.expect_close(1002)


def test_a_close_reason_that_is_not_utf8_fails_with_1007(connect):
    client = connect()
    client.send(close_frame(1000, b"\xce\xba\xff"))
    client.expect_close(1007)


def test_a_close_reason_of_123_bytes_is_fine(connect):
    client = connect()
    client.send(close_frame(1000, b"r" * 123))
    assert client.read_frame()[0] == CLOSE


def test_nothing_is_answered_after_the_close(connect):
    client = connect()
    client.send(close_frame(1000) + frame(TEXT, b"too late") + frame(PING, b"too late"))
    opcode, _, _, payload = client.read_frame()
    assert opcode == CLOSE
    assert client.sock.recv(100) in (b"",)


def test_a_server_close_is_seen_by_on_close(connect, server):
    client = connect("/echo/closing")
    client.send(frame(TEXT, b"close:4321:done here"))
    assert client.expect_close(4321) == b"done here"
    events = server_events(server)
    assert {"close": "/echo/closing", "code": 1000, "reason": ""} in events


# -- 9. limits ---------------------------------------------------------------------------------

def test_a_message_over_the_limit_fails_with_1009(connect):
    client = connect()
    client.send(frame(BINARY, b"x" * (LIMIT + 1)))
    client.expect_close(1009)


def test_a_huge_declared_length_fails_before_its_payload(connect):
    client = connect()
    client.send(bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 40) + b"mask")
    client.expect_close(1009)  # nothing of the terabyte was sent or awaited


def test_fragments_adding_up_over_the_limit_fail_with_1009(connect):
    client = connect()
    half = b"x" * (LIMIT // 2 + 1)
    client.send(frame(BINARY, half, fin=False) + frame(CONT, half))
    client.expect_close(1009)


# -- 12/13. per-message-deflate ----------------------------------------------------------------

def deflate_client(connect, offer="permessage-deflate"):
    client = connect("/deflate", headers={"Sec-WebSocket-Extensions": offer})
    assert client.status == 101
    return client


def inflate(decompressor, payload):
    return decompressor.decompress(payload + b"\x00\x00\xff\xff")


def test_deflate_round_trips_with_context_takeover(connect):
    client = deflate_client(connect)
    assert client.headers["sec-websocket-extensions"] == "permessage-deflate"
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    decompressor = zlib.decompressobj(-15)
    for i in range(5):
        text = f"message {i} ".encode() * 50
        client.send(frame(TEXT, deflate_message(text, compressor), rsv=4))
        opcode, fin, rsv, payload = client.read_frame()
        assert (opcode, fin, rsv) == (TEXT, True, 4)
        assert inflate(decompressor, payload) == text
        if i:  # the context is kept: a repeated message compresses to little
            assert len(payload) < 40


def test_deflate_uncompressed_frames_are_still_allowed(connect):
    client = deflate_client(connect)
    client.send(frame(BINARY, b"plain"))
    opcode, _, rsv, payload = client.read_frame()
    assert inflate(zlib.decompressobj(-15), payload) == b"plain"


def test_deflate_fragmented_compressed_message(connect):
    client = deflate_client(connect)
    data = deflate_message("κόσμε ".encode() * 100)
    parts = [data[i:i + 7] for i in range(0, len(data), 7)]
    frames = [frame(TEXT if i == 0 else CONT, part, fin=i == len(parts) - 1,
                    rsv=4 if i == 0 else 0) for i, part in enumerate(parts)]
    client.send(b"".join(frames))
    opcode, _, rsv, payload = client.read_frame()
    assert inflate(zlib.decompressobj(-15), payload) == "κόσμε ".encode() * 100


def test_deflate_rsv1_on_a_continuation_fails(connect):
    client = deflate_client(connect)
    client.send(frame(TEXT, deflate_message(b"a"), fin=False, rsv=4)
                + frame(CONT, b"b", rsv=4))
    client.expect_close(1002)


def test_deflate_a_bomb_fails_with_1009_while_inflating(connect):
    client = deflate_client(connect)
    bomb = deflate_message(b"\0" * (64 * LIMIT))
    assert len(bomb) < LIMIT  # small on the wire, far over the limit inflated
    client.send(frame(BINARY, bomb, rsv=4))
    client.expect_close(1009)


def test_deflate_invalid_compressed_utf8_fails_with_1007(connect):
    client = deflate_client(connect)
    client.send(frame(TEXT, deflate_message(b"\xff\xfe"), rsv=4))
    client.expect_close(1007)


def test_deflate_server_no_context_takeover(connect):
    client = deflate_client(connect, "permessage-deflate; server_no_context_takeover")
    assert client.headers["sec-websocket-extensions"] == \
        "permessage-deflate; server_no_context_takeover"
    for _ in range(3):
        client.send(frame(TEXT, b"same again " * 20))
        _, _, rsv, payload = client.read_frame()
        # each message stands alone: a fresh decompressor reads it
        assert rsv == 4 and inflate(zlib.decompressobj(-15), payload) == b"same again " * 20


def test_deflate_client_no_context_takeover_is_acknowledged(connect):
    client = deflate_client(connect, "permessage-deflate; client_no_context_takeover")
    assert client.headers["sec-websocket-extensions"] == \
        "permessage-deflate; client_no_context_takeover"
    for _ in range(3):  # the client resets its compressor each message
        client.send(frame(TEXT, deflate_message(b"fresh " * 20), rsv=4))
        assert client.read_frame()[0] == TEXT


def test_deflate_server_max_window_bits_is_honoured(connect):
    client = deflate_client(connect, "permessage-deflate; server_max_window_bits=10")
    assert client.headers["sec-websocket-extensions"] == \
        "permessage-deflate; server_max_window_bits=10"
    text = os.urandom(2000) * 3  # repeats 2000 bytes back: a 15-bit window would use them
    client.send(frame(BINARY, text))
    payload = client.read_frame()[3]
    assert inflate(zlib.decompressobj(-10), payload) == text
    assert len(payload) > 5000  # the repeats could not be referred to: the window is 1 KiB


def test_deflate_client_max_window_bits_without_a_value_is_accepted(connect):
    client = deflate_client(connect, "permessage-deflate; client_max_window_bits")
    # the server does not limit the client's window, so it does not name the parameter
    assert client.headers["sec-websocket-extensions"] == "permessage-deflate"
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    client.send(frame(TEXT, deflate_message(b"big window " * 500, compressor), rsv=4))
    assert client.read_frame()[0] == TEXT


@pytest.mark.parametrize("offer, accepted", [
    ("permessage-deflate; server_max_window_bits=8", None),  # zlib cannot
    ("permessage-deflate; server_max_window_bits=16", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; client_max_window_bits=7", None),
    ("permessage-deflate; server_no_context_takeover=1", None),
    ("permessage-deflate; unknown_parameter", None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("x-unknown-extension", None),
    ('permessage-deflate; client_max_window_bits="10"', "permessage-deflate"),
    ("permessage-deflate; unknown, permessage-deflate; server_max_window_bits=12",
     "permessage-deflate; server_max_window_bits=12"),
    ("x-other, PerMessage-Deflate", "permessage-deflate"),
])
def test_deflate_negotiation(connect, offer, accepted):
    client = connect("/deflate", headers={"Sec-WebSocket-Extensions": offer})
    assert client.status == 101
    assert client.headers.get("sec-websocket-extensions") == accepted
    client.send(frame(TEXT, b"works"))
    opcode, _, rsv, payload = client.read_frame()
    if accepted:
        assert rsv == 4 and inflate(zlib.decompressobj(-15), payload) == b"works"
    else:
        assert (opcode, rsv, payload) == (TEXT, 0, b"works")


def test_deflate_is_not_used_unless_the_handler_enables_it(connect):
    client = connect("/echo", headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
    assert "sec-websocket-extensions" not in client.headers
    client.send(frame(TEXT, deflate_message(b"x"), rsv=4))
    client.expect_close(1002)
