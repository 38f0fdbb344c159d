"""Hypothesis strategies for raw HTTP/1.1 requests: valid ones, and mutations of them.

:func:`requests` draws one request as bytes (method, target, fields, a Content-Length or
chunked body with extensions and trailers); :func:`pipelines` draws one to three of them
back to back; :func:`mutated` applies a few byte-level mutations (flips, inserted CR, LF,
SP, HTAB, NUL, ":" or ",", duplicated, dropped, swapped or cut lines, a field line cut
to its name, case changes).

:data:`FIELD_NAMES` holds every field name the strategies use, so a server can be shown
all of them beforehand (tests/test_fuzz_wire.py).
"""

from __future__ import annotations

from hypothesis import strategies as st

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "M-X"]
FIELD_NAMES = ["Accept", "Accept-Encoding", "User-Agent", "Cookie", "X-Foo", "X-Request-Id",
               "Cache-Control", "Content-Type", "Authorization", "Referer", "Foo", "x-bar",
               "If-None-Match", "Forwarded", "Via", "Range", "Content-Encoding", "Expect",
               "Connection", "X-Sum", "TE", "Trailer", "Upgrade", "Content-Length",
               "Transfer-Encoding", "Host"]
#: names used for ordinary fields (the framing ones are added on purpose, see requests())
_PLAIN_NAMES = FIELD_NAMES[:20]
_TRAILER_NAMES = ["X-Sum", "X-Foo", "Foo", "x-bar", "Server-Timing"]
_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._~%/!$&'()*+,;=:@"
_VALUE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from(
    ["\xe9", "\xff", "\x80"])

tokens = st.text(_TOKEN_CHARS, min_size=1, max_size=8)
hosts = st.sampled_from(["example.com", "a.example:8080", "localhost", "[::1]:80",
                         "127.0.0.1", "x"])


@st.composite
def field_values(draw) -> str:
    words = draw(st.lists(st.text(_VALUE_CHARS, min_size=1, max_size=6), max_size=4))
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\t"]), min_size=len(words),
                         max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps, strict=True)).rstrip(" \t")


@st.composite
def targets(draw, method: str) -> str:
    kind = draw(st.sampled_from(["origin"] * 6 + ["absolute", "asterisk"]))
    if kind == "asterisk" and method == "OPTIONS":
        return "*"
    path = "/" + draw(st.text(_PATH_CHARS, max_size=12))
    if draw(st.booleans()):
        path += "?" + draw(st.text(_PATH_CHARS + "?", max_size=10))
    if kind == "absolute":
        return draw(st.sampled_from(["http://", "https://"])) + draw(hosts) + path
    return path


@st.composite
def chunked_bodies(draw) -> tuple[bytes, bytes]:
    """(the chunked encoding, the body it carries)."""
    chunks = draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4))
    out = []
    for chunk in chunks + [b""]:
        size = draw(st.sampled_from(["%x", "%X", "0%x", "000%x"])) % len(chunk)
        exts = ""
        for _ in range(draw(st.integers(0, 2))):
            ws = draw(st.sampled_from(["", "", " ", "\t"]))
            exts += ws + ";" + ws + draw(tokens)
            if draw(st.booleans()):
                value = draw(tokens | st.text(_TOKEN_CHARS + " \t(),/:;<=>?@[]{}",
                                              max_size=6).map(lambda s: '"' + s + '"'))
                exts += ws + "=" + ws + value
        out.append((size + exts).encode("latin-1") + b"\r\n" + chunk
                   + (b"\r\n" if chunk else b""))
    trailers = draw(st.lists(st.tuples(st.sampled_from(_TRAILER_NAMES), field_values()),
                             max_size=2))
    out.append("".join(f"{n}: {v}\r\n" for n, v in trailers).encode("latin-1") + b"\r\n")
    return b"".join(out), b"".join(chunks)


@st.composite
def requests(draw) -> bytes:
    """One valid request."""
    method = draw(st.sampled_from(METHODS) | tokens)
    version = draw(st.sampled_from(["HTTP/1.1"] * 5 + ["HTTP/1.0"]))
    target = draw(targets(method))
    fields = draw(st.lists(st.tuples(st.sampled_from(_PLAIN_NAMES) | tokens,
                                     field_values()), max_size=5))
    # one of each singleton at most, and a valid Expect only
    seen: set[str] = set()
    kept = []
    for name, value in fields:
        lname = name.lower()
        if lname in ("content-type", "authorization", "host", "content-length",
                     "transfer-encoding", "proxy-authorization") and lname in seen:
            continue
        if lname in ("expect", "connection", "te", "trailer", "upgrade"):
            continue  # added below with valid values
        seen.add(lname)
        kept.append((name, value))
    if version == "HTTP/1.1" or draw(st.booleans()):
        kept.insert(draw(st.integers(0, len(kept))), ("Host", draw(hosts)))
    if draw(st.integers(0, 5)) == 0:
        kept.append(("Connection", draw(st.sampled_from(["close", "keep-alive", "te"]))))
    body = b""
    framing = draw(st.sampled_from(["none", "none", "length", "chunked"]))
    if framing == "chunked" and version == "HTTP/1.0":
        framing = "length"
    if framing == "length":
        body = draw(st.binary(max_size=30))
        kept.append((draw(st.sampled_from(["Content-Length", "content-length"])),
                     str(len(body))))
    elif framing == "chunked":
        encoded, _ = draw(chunked_bodies())
        kept.append((draw(st.sampled_from(["Transfer-Encoding", "transfer-encoding"])),
                     draw(st.sampled_from(["chunked", "Chunked"]))))
        body = encoded
    if framing != "none" and version == "HTTP/1.1" and draw(st.integers(0, 4)) == 0:
        kept.append(("Expect", "100-continue"))
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in kept)
    return head.encode("latin-1") + b"\r\n" + body


@st.composite
def pipelines(draw) -> bytes:
    """One to three valid requests back to back, sometimes with empty lines before one."""
    parts = draw(st.lists(requests(), min_size=1, max_size=3))
    return b"".join(draw(st.sampled_from([b"", b"", b"\r\n"])) + p for p in parts)


_INSERTS = [b"\r", b"\n", b" ", b"\t", b"\x00", b":", b",", b"\r\n", b";", b"0"]


@st.composite
def mutated(draw, base=None) -> bytes:
    """A pipeline with one to three mutations."""
    data = bytearray(draw(base if base is not None else pipelines()))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "insert", "delete", "dup-line",
                                     "drop-line", "swap-lines", "cut-line", "name-only",
                                     "case"]))
        if not data:
            data += b"\r\n"
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(_INSERTS))
        elif kind == "delete":
            del data[pos]
        elif kind == "case":
            end = min(len(data), pos + draw(st.integers(1, 20)))
            piece = bytes(data[pos:end])
            data[pos:end] = piece.upper() if draw(st.booleans()) else piece.lower()
        else:
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "dup-line":
                lines.insert(i, lines[i])
            elif kind == "drop-line" and len(lines) > 1:
                del lines[i]
            elif kind == "swap-lines" and i + 1 < len(lines):
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
            elif kind == "cut-line":
                lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
            elif kind == "name-only":  # "Name: value" -> "Name"
                lines[i] = lines[i].partition(b":")[0]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


#: a valid pipeline or a mutated one, about half and half
any_input = st.one_of(pipelines(), mutated())
