"""Sans-I/O WebSocket (RFC 6455) for the server side, with per-message-deflate (RFC 7692).

No sockets, no loop: bytes in, events out; messages in, bytes out.

* :func:`accept_key` answers a ``Sec-WebSocket-Key``; :func:`negotiate_deflate` picks the
  first acceptable ``permessage-deflate`` offer of a ``Sec-WebSocket-Extensions`` field
  and gives the response's parameters.
* :class:`FrameReader` takes the client's bytes (:meth:`~FrameReader.feed`) and gives
  one event at a time (:meth:`~FrameReader.next_event`): ``(TEXT, str)``,
  ``(BINARY, bytes)``, ``(PING, bytes)``, ``(PONG, bytes)`` or ``(CLOSE, (code,
  reason))``; None when it needs more bytes.  A frame that breaks the protocol raises
  :class:`WebSocketError` carrying the close code to fail the connection with (1002
  protocol, 1007 invalid UTF-8, 1009 too big); the reader is then dead.  Sizes are
  checked from a frame's header, before its payload is buffered, and a compressed
  message is inflated no further than the size limit.
* :func:`encode_frame` and :func:`close_payload` make the server's (unmasked) frames;
  :class:`PerMessageDeflate` compresses a message for them.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import re
import zlib
from typing import Any

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
#: Close codes that never appear in a close frame (RFC 6455 7.4.1): 1004 reserved, 1005
#: "no status", 1006 "abnormal closure", 1015 "TLS failure".
_CODES_NOT_SENT = frozenset({1004, 1005, 1006, 1015})


class WebSocketError(Exception):
    """The client broke the protocol: fail the connection with close ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for the client's ``Sec-WebSocket-Key``."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def valid_key(key: str) -> bool:
    """True for a ``Sec-WebSocket-Key``: base64 of 16 bytes."""
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


def close_code_allowed(code: int) -> bool:
    """True for a code a close frame may carry: the defined ones from 1000 to 1014 (less
    those never sent), and 3000-4999 (registered and private use)."""
    return 1000 <= code <= 1014 and code not in _CODES_NOT_SENT or 3000 <= code <= 4999


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame: empty without a code, else the code and reason
    (UTF-8, cut to fit the 125 bytes a control frame may carry)."""
    if code is None:
        return b""
    data = reason.encode("utf-8")[:123]
    # a cut in the middle of a character would send invalid UTF-8
    data = data.decode("utf-8", "ignore").encode("utf-8")
    return code.to_bytes(2, "big") + data


def encode_frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    """One final, unmasked frame (as a server sends them)."""
    first = 0x80 | opcode | (0x40 if rsv1 else 0)
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2, "big") + payload
    return bytes((first, 127)) + length.to_bytes(8, "big") + payload


def frame_header(opcode: int, length: int, rsv1: bool = False) -> bytes:
    """The header of a final, unmasked frame whose payload is sent separately."""
    first = 0x80 | opcode | (0x40 if rsv1 else 0)
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


_IDENTITY = int.from_bytes(bytes(range(256)), "little")
_TRANSLATE_FROM = 4096  # from this size, four translations beat one big-integer XOR


def _xor_table(byte: int) -> bytes:
    """The translation table of XOR with ``byte``."""
    return (_IDENTITY ^ int.from_bytes(bytes((byte,)) * 256, "little")).to_bytes(256, "little")


def unmask(mask: bytes, data: bytes) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (masking and unmasking are the same)."""
    length = len(data)
    if not length:
        return data
    if length < _TRANSLATE_FROM:
        key = (mask * (length // 4 + 1))[:length]
        # One XOR of two big integers: linear, and done in C.
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
            length, "little")
    # Every fourth byte is XORed with the same mask byte: a translation, in C.
    out = bytearray(data)
    for offset in range(4):
        out[offset::4] = data[offset::4].translate(_xor_table(mask[offset]))
    return bytes(out)


# -- per-message-deflate (RFC 7692) ------------------------------------------------------------

_PARAM_RE = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("[^"]*"|[^\s;,"]*))?\s*')
_BITS_RE = re.compile(r"[89]|1[0-5]")


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_extensions(values: list[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """The offers of ``Sec-WebSocket-Extensions`` field values, in order, as
    ``(name, [(parameter, value or None), ...])``; names lower-cased, quotes removed.
    A malformed offer is left out."""
    offers = []
    for value in values:
        for offer in _split_outside_quotes(value, ","):
            pieces = _split_outside_quotes(offer, ";")
            name = pieces[0].strip().lower()
            if not name:
                continue
            params: list[tuple[str, str | None]] = []
            for piece in pieces[1:]:
                match = _PARAM_RE.fullmatch(piece)
                if match is None:
                    break
                raw = match.group(2)
                if raw is not None and raw.startswith('"'):
                    raw = raw[1:-1]
                params.append((match.group(1).lower(), raw))
            else:
                offers.append((name, params))
    return offers


class PerMessageDeflate:
    """The negotiated per-message-deflate of one connection: inflates the client's
    messages, deflates the server's.

    ``server_no_context_takeover`` makes every message the server sends stand alone
    (a full flush resets the compressor after each); ``server_max_window_bits`` is the
    window the compressor uses.  The client's messages are inflated with the largest
    window, which reads any smaller one; with its context kept between messages, which
    is harmless when the client resets its own (``client_no_context_takeover``).
    """

    def __init__(self, *, server_no_context_takeover: bool = False,
                 client_no_context_takeover: bool = False, server_max_window_bits: int = 15,
                 compression_level: int = 6, mem_level: int = 8) -> None:
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self._compressor = zlib.compressobj(compression_level, zlib.DEFLATED,
                                            -server_max_window_bits, mem_level)
        self._flush_mode = zlib.Z_FULL_FLUSH if server_no_context_takeover else \
            zlib.Z_SYNC_FLUSH
        self._decompressor = zlib.decompressobj(-15)

    def response_parameters(self, offered_server_bits: bool) -> str:
        """The extension as the handshake's response names it."""
        text = "permessage-deflate"
        if self.server_no_context_takeover:
            text += "; server_no_context_takeover"
        if self.client_no_context_takeover:
            text += "; client_no_context_takeover"
        if offered_server_bits:
            text += f"; server_max_window_bits={self.server_max_window_bits}"
        return text

    def compress(self, data: bytes) -> bytes:
        """A message's payload, compressed (the empty block's tail removed, §7.2.1)."""
        out = self._compressor.compress(data) + self._compressor.flush(self._flush_mode)
        return out[:-4] if out.endswith(_DEFLATE_TAIL) else out

    def decompress(self, data: bytes, final: bool, limit: int) -> bytes:
        """Inflate one fragment of a compressed message (``final`` for the last); raises
        :class:`WebSocketError` (1009) past ``limit`` bytes, 1007 for bad deflate data."""
        if final:
            data += _DEFLATE_TAIL
        try:
            out = self._decompressor.decompress(data, limit + 1)
        except zlib.error as exc:
            raise WebSocketError(1007, f"invalid compressed data: {exc}") from None
        if len(out) > limit or self._decompressor.unconsumed_tail:
            raise WebSocketError(1009, "message too big")
        return out


_DEFLATE_OPTIONS = frozenset({"compression_level", "mem_level", "no_context_takeover",
                              "max_window_bits"})


def negotiate_deflate(values: list[str], options: dict[str, Any]
                      ) -> tuple[PerMessageDeflate, str] | None:
    """The connection's deflate and the response's extension text for the first
    acceptable ``permessage-deflate`` offer in ``values`` (the request's
    ``Sec-WebSocket-Extensions``), or None.

    ``options``: ``compression_level`` (0-9), ``mem_level`` (1-9),
    ``no_context_takeover`` (the server resets its compressor after every message) and
    ``max_window_bits`` (9-15: the server's largest window).  An offer is declined when
    a parameter is unknown, repeated or out of range, or when it asks for a server
    window of 8 bits (zlib cannot deflate with one).
    """
    unknown = set(options) - _DEFLATE_OPTIONS
    if unknown:
        raise ValueError(f"unknown per-message-deflate options: {sorted(unknown)}")
    own_bits = int(options.get("max_window_bits", 15))
    if not 9 <= own_bits <= 15:
        raise ValueError(f"max_window_bits must be 9 to 15, not {own_bits}")
    for name, params in parse_extensions(values):
        if name != "permessage-deflate":
            continue
        seen: dict[str, str | None] = {}
        acceptable = True
        for key, value in params:
            if key in seen:
                acceptable = False
            elif key in ("server_no_context_takeover", "client_no_context_takeover"):
                acceptable = acceptable and value is None
            elif key == "server_max_window_bits":
                acceptable = acceptable and value is not None and \
                    _BITS_RE.fullmatch(value) is not None and value != "8"
            elif key == "client_max_window_bits":
                acceptable = acceptable and (value is None or
                                             _BITS_RE.fullmatch(value) is not None)
            else:
                acceptable = False
            seen[key] = value
        if not acceptable:
            continue
        server_bits = own_bits
        if seen.get("server_max_window_bits") is not None:
            server_bits = min(server_bits, int(seen["server_max_window_bits"]))  # type: ignore[arg-type]
        deflate = PerMessageDeflate(
            server_no_context_takeover="server_no_context_takeover" in seen
            or bool(options.get("no_context_takeover")),
            client_no_context_takeover="client_no_context_takeover" in seen,
            server_max_window_bits=server_bits,
            compression_level=int(options.get("compression_level", 6)),
            mem_level=int(options.get("mem_level", 8)))
        return deflate, deflate.response_parameters("server_max_window_bits" in seen)
    return None


# -- reading frames ----------------------------------------------------------------------------

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class FrameReader:
    """The client's frames, assembled into messages; see the module docstring.

    ``max_message_size`` bounds a data message (after inflating); the client's frames
    must be masked.  After a close frame the reader gives nothing more.
    """

    def __init__(self, max_message_size: int, deflate: PerMessageDeflate | None = None) -> None:
        self.max_message_size = max_message_size
        self.deflate = deflate
        self._buffer = b""
        # Bytes received while a frame waits for the rest of it: joined to the buffer
        # once the frame is whole, so a large frame is copied once, not once per chunk.
        self._more: list[bytes] = []
        self._more_size = 0
        self._wanted = 0  # bytes the buffer needs before the next frame can be read
        self._closed = False
        # the fragmented message in progress: its opcode (0: none), parts, size so far
        self._opcode = 0
        self._compressed = False
        self._parts: list[bytes] = []
        self._size = 0
        self._decoder: Any = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return len(self._buffer) + self._more_size

    def feed(self, data: bytes) -> None:
        if self._closed:
            return
        if self._buffer:
            self._more.append(data)
            self._more_size += len(data)
        else:
            self._buffer = data

    def next_event(self) -> tuple[int, Any] | None:
        """The next message or control frame, or None until more bytes come."""
        while not self._closed:
            if self._more and len(self._buffer) + self._more_size >= self._wanted:
                self._buffer = b"".join([self._buffer, *self._more])
                self._more = []
                self._more_size = 0
            buf = self._buffer
            if len(buf) < 2:
                self._wanted = 2
                return None
            first, second = buf[0], buf[1]
            opcode = first & 0x0F
            length = second & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    self._wanted = 4
                    return None
                length = int.from_bytes(buf[2:4], "big")
                start = 4
            elif length == 127:
                if len(buf) < 10:
                    self._wanted = 10
                    return None
                length = int.from_bytes(buf[2:10], "big")
                start = 10
                if length >> 63:
                    self._fail(1002, "the payload length's top bit is set")
            if not second & 0x80:
                self._fail(1002, "a client frame is not masked")
            self._check_header(first, opcode, length)
            end = start + 4 + length
            if len(buf) < end:
                self._wanted = end
                return None
            mask = buf[start:start + 4]
            payload = unmask(mask, buf[start + 4:end])
            self._buffer = buf[end:]
            self._wanted = 0
            event = self._frame(first, opcode, payload)
            if event is not None:
                return event
        return None

    def _fail(self, code: int, reason: str) -> None:
        self._closed = True
        self._buffer = b""
        self._more = []
        self._more_size = 0
        raise WebSocketError(code, reason)

    def _check_header(self, first: int, opcode: int, length: int) -> None:
        """Refuse a frame from its header alone, before its payload is buffered."""
        rsv = first & 0x70
        if opcode >= 8:
            if opcode > PONG:
                self._fail(1002, f"reserved opcode {opcode}")
            if not first & 0x80:
                self._fail(1002, "a fragmented control frame")
            if length > 125:
                self._fail(1002, "a control frame longer than 125 bytes")
            if rsv:
                self._fail(1002, "reserved bits set on a control frame")
            return
        if opcode > BINARY:
            self._fail(1002, f"reserved opcode {opcode}")
        if rsv & 0x30 or rsv and (self.deflate is None or opcode == CONTINUATION):
            self._fail(1002, "reserved bits set")
        if opcode == CONTINUATION:
            if not self._opcode:
                self._fail(1002, "a continuation frame with no message to continue")
        elif self._opcode:
            self._fail(1002, "a new message before the fragmented one ended")
        compressed = self._compressed if opcode == CONTINUATION else bool(rsv)
        # (a compressed message's inflated size is checked while inflating)
        if length > self.max_message_size or \
                not compressed and self._size + length > self.max_message_size:
            self._fail(1009, "message too big")

    def _frame(self, first: int, opcode: int, payload: bytes) -> tuple[int, Any] | None:
        final = first & 0x80
        if opcode >= 8:
            if opcode == CLOSE:
                self._closed = True
                self._buffer = b""
                self._more = []
                self._more_size = 0
                return CLOSE, self._close_frame(payload)
            return opcode, payload
        try:
            if opcode != CONTINUATION:  # a message starts
                self._compressed = bool(first & 0x40)
                if final:  # the usual case: one frame
                    if self._compressed:
                        payload = self.deflate.decompress(  # type: ignore[union-attr]
                            payload, True, self.max_message_size)
                    if opcode == TEXT:
                        return TEXT, payload.decode("utf-8")
                    return BINARY, payload
                self._opcode = opcode
                self._decoder = _utf8_decoder() if opcode == TEXT else None
            if self._compressed:
                payload = self.deflate.decompress(  # type: ignore[union-attr]
                    payload, bool(final), self.max_message_size - self._size)
            self._size += len(payload)
            if self._decoder is not None:
                # Checked fragment by fragment: invalid text fails at once, while a
                # character split between fragments waits for its end.
                self._decoder.decode(payload, bool(final))
            self._parts.append(payload)
        except UnicodeDecodeError:
            self._fail(1007, "a text message is not valid UTF-8")
        except WebSocketError as exc:
            self._fail(exc.code, exc.reason)
        if not final:
            return None
        data = b"".join(self._parts)
        kind = self._opcode
        self._opcode = 0
        self._parts = []
        self._size = 0
        self._decoder = None
        if kind == TEXT:
            return TEXT, data.decode("utf-8")  # already checked
        return BINARY, data

    def _close_frame(self, payload: bytes) -> tuple[int, str]:
        if not payload:
            return 1005, ""
        if len(payload) == 1:
            self._fail(1002, "a close frame with a one-byte payload")
        code = int.from_bytes(payload[:2], "big")
        if not close_code_allowed(code):
            self._fail(1002, f"close code {code} is not allowed")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            self._fail(1007, "the close reason is not valid UTF-8")
        return code, reason
