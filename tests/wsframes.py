"""A raw WebSocket client for the conformance tests, written from RFC 6455 apart from the
server's codec: it builds any frame (masked or not, any opcode, reserved bits, any
fragmentation) and reads the server's frames as they are, so the tests can send what a
well-behaved client never would and see exactly what came back."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import zlib

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True,
          rsv: int = 0, length: int | None = None) -> bytes:
    """One frame.  ``rsv`` is the three reserved bits (4: RSV1); ``length`` overrides the
    payload length written in the header."""
    size = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    if size < 126:
        head.append(mask_bit | size)
    elif size < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", size)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", size)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + key + masked


def close_frame(code: int | None = None, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(CLOSE, payload)


def deflate_message(data: bytes, compressor=None) -> bytes:
    """``data`` compressed as RFC 7692 section 7.2.1 says (the 4-byte tail removed)."""
    compressor = compressor or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class RawClient:
    """A blocking WebSocket connection at the frame level.  ``early``: bytes sent with the
    handshake request, in the same ``sendall``, before its answer is read."""

    def __init__(self, host: str, port: int, path: str = "/echo",
                 headers: dict[str, str] | None = None, timeout: float = 5.0,
                 early: bytes = b"") -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        fields = {"Host": f"{host}:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
                  "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", **(headers or {})}
        request = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        self.sock.sendall(request.encode() + early)
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        self.status_line, *lines = head.split("\r\n")
        self.status = int(self.status_line.split()[1])
        self.headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
        if self.status == 101:
            expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            assert self.headers["sec-websocket-accept"] == expected

    def _read_until(self, delimiter: bytes) -> bytes:
        while delimiter not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed before {delimiter!r}: {self.buffer!r}")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(delimiter)
        return head

    def _read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed in the middle of a frame")
            self.buffer += data
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frames(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(frames))

    def read_frame(self) -> tuple[int, bool, int, bytes]:
        """``(opcode, fin, rsv, payload)`` of the next frame; server frames are never
        masked (asserted)."""
        first, second = self._read_exactly(2)
        assert not second & 0x80, "a server frame is masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read_exactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read_exactly(8))[0]
        return first & 0x0F, bool(first & 0x80), (first >> 4) & 7, self._read_exactly(size)

    def read_message(self) -> tuple[int, bytes]:
        """The next data message (pings are answered, pongs skipped) or close frame."""
        while True:
            opcode, fin, _, payload = self.read_frame()
            if opcode == PING:
                self.send(frame(PONG, payload))
                continue
            if opcode == PONG:
                continue
            assert fin, "the server fragments its messages"
            return opcode, payload

    def expect_close(self, code: int | None) -> bytes:
        """Read until the server's close frame; assert its code; then the TCP close."""
        while True:
            opcode, _, _, payload = self.read_frame()
            if opcode == CLOSE:
                break
        got = struct.unpack("!H", payload[:2])[0] if payload else None
        assert got == code, (got, payload)
        self.expect_eof()
        return payload[2:]

    def expect_eof(self, timeout: float = 8.0) -> None:
        """The server closes the TCP connection (after a close frame we may echo)."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(close_frame(1000))
        except OSError:
            return
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not data:
                return

    def close(self) -> None:
        self.sock.close()
