"""Hypothesis strategies for raw HTTP/1.1 requests: valid ones, and mutations of them.

:func:`requests` draws one request as bytes (method, target, fields, a Content-Length or
chunked body with extensions and trailers); :func:`pipelines` draws one to three of them
back to back; :func:`mutated` applies a few byte-level mutations (flips, inserted CR, LF,
SP, HTAB, NUL, ":" or ",", duplicated, dropped, swapped or cut lines, a field line cut
to its name, case changes); :func:`edge_requests` changes valid ones where parsers are
known to differ (versions, methods, target forms, field separators, framing fields);
:func:`clean_requests` draws requests of the kind the connection's flat path takes, and
some one change away from it.

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
               "Transfer-Encoding", "Host", "X", "X-Y", "Proxy-Authorization"]
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


# -- edges: what one parser may take and another refuse -------------------------------------

#: request line parts and field lines around which parsers differ (llhttp, h11, ours):
#: versions, methods llhttp does not know, target forms, framing and singleton fields,
#: Upgrade and CONNECT (llhttp pauses on them), obs-text, empty values and names
EDGE_VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/0.9",
                 "HTTP/3.0", "HTTP/10.0", "http/1.1", "HTTP/1", "HTTP/1.1 ", "HTTP/01.1"]
EDGE_METHODS = ["GET", "get", "Get", "POST", "CONNECT", "OPTIONS", "PRI", "FOO", "M-SEARCH",
                "QUERY", "SOURCE", "PURGE", "HEAD", "TRACE", "G@T", "GET\t", ""]
EDGE_TARGETS = ["/", "/a?b=c", "*", "http://x/y", "HTTPS://x:1/", "ftp://x/", "http://u@x/",
                "http:///", "x:80", "[::1]:80", "/a#b", "/\x80", "/a\x7f", "//", "/a\"<>\\^`{|}",
                "index.html", "?", "/%zz"]
EDGE_FIELDS = ["Host: a", "Host: a b", "Host: [::1]:8", "Host: a:x", "Host:", "Host: u@a",
               "Content-Length: 5", "Content-Length: 0", "Content-Length: 01",
               "Content-Length: 1, 1", "Content-Length: +1", "Content-Length: 99999999999",
               "Content-Length: 1e3", "Transfer-Encoding: chunked",
               "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: chunked, chunked",
               "Transfer-Encoding: identity", "Transfer-Encoding: chunked,",
               "Expect: 100-continue", "Expect: foo", "Expect: 100-Continue",
               "Upgrade: websocket", "Upgrade: h2c", "Connection: upgrade",
               "Connection: close", "Connection: keep-alive", "Connection: Upgrade, close",
               "Content-Type: a/b", "Authorization: Basic x", "Proxy-Authorization: y",
               ": v", "X: \x80\xff", "X:", "X: ", "X-\xff: 1", "X :1", "X\t: 1", "X:\t1",
               "X:  1  ", "X:1", "X: a\x01b", "X: a\x7f", "X: a\tb", "X:\t", " folded",
               "\tfolded", "X", "X-Y: \"q\"", "TE: trailers", "Trailer: X-Sum"]
_SEPARATORS = [": ", ":", ":  ", ":\t", ": \t", " : ", "\t:", ":\t ", ":   "]
_VALUE_ENDS = ["", " ", "\t", "  ", " \t"]


@st.composite
def edge_requests(draw) -> bytes:
    """A valid pipeline with one to four edge changes: a request line part replaced,
    a field line added, its separator or its value's end changed."""
    data = draw(pipelines())
    head, sep, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["method", "target", "version", "field", "field",
                                     "separator", "value-end", "spaces"]))
        if kind in ("method", "target", "version"):
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                continue
            index = ("method", "target", "version").index(kind)
            choices = {"method": EDGE_METHODS, "target": EDGE_TARGETS,
                       "version": EDGE_VERSIONS}[kind]
            parts[index] = draw(st.sampled_from(choices)).encode("latin-1")
            lines[0] = b" ".join(parts)
        elif kind == "spaces":
            lines[0] = lines[0].replace(b" ", draw(st.sampled_from([b"  ", b"\t", b" \t"])),
                                        1 if draw(st.booleans()) else 2)
        elif kind == "field":
            field = draw(st.sampled_from(EDGE_FIELDS)).encode("latin-1")
            lines.insert(draw(st.integers(1, len(lines))), field)
        elif len(lines) > 1:
            i = draw(st.integers(1, len(lines) - 1))
            name, colon, value = lines[i].partition(b":")
            if not colon:
                continue
            if kind == "separator":
                lines[i] = name + draw(st.sampled_from(_SEPARATORS)).encode() \
                    + value.lstrip(b" \t")
            else:
                lines[i] = lines[i] + draw(st.sampled_from(_VALUE_ENDS)).encode()
    return b"\r\n".join(lines) + sep + rest


# -- clean requests: what the connection's flat path takes --------------------------------

_CLEAN_METHODS = ["GET", "HEAD", "DELETE", "OPTIONS", "POST", "GET", "GET"]
_CLEAN_NAMES = ["Accept", "User-Agent", "Cookie", "cookie", "X-Foo", "x-foo", "X_Foo",
                "Accept-Encoding", "If-None-Match", "Forwarded", "X-Forwarded-For", "Via"]
_PATH = "abcdefghij0123456789-._~%/!$&'()*+,;=:@"


@st.composite
def clean_requests(draw) -> bytes:
    """A request of the kind the flat path takes -- or, now and then, one byte away from
    it (another version, a framing field, a second Host, a pipelined second request,
    whitespace after a value)."""
    method = draw(st.sampled_from(_CLEAN_METHODS))
    path = "/" + draw(st.text(_PATH, max_size=14))
    if draw(st.booleans()):
        path += "?" + draw(st.text(_PATH + "?", max_size=8))
    fields = draw(st.lists(st.tuples(st.sampled_from(_CLEAN_NAMES), field_values()),
                           max_size=5))
    fields.insert(draw(st.integers(0, len(fields))),
                  (draw(st.sampled_from(["Host", "host", "HOST", "hOsT"])),
                   draw(hosts | st.sampled_from(["", "a b", "x:", "x:y", "\xe9.example"]))))
    version = "HTTP/1.1"
    twist = draw(st.sampled_from(["none"] * 12 + ["version", "framing", "host", "twice",
                                                  "close", "expect", "trailing"]))
    if twist == "version":
        version = "HTTP/1.0"
    elif twist == "framing":
        fields.append(("Content-Length", "0"))
    elif twist == "host":
        fields.append(("Host", "other"))
    elif twist == "close":
        fields.append(("Connection", "close"))
    elif twist == "expect":
        fields.append(("Expect", "100-continue"))
    elif twist == "trailing":  # whitespace after a value (Host's too), which is stripped
        i = draw(st.integers(0, len(fields) - 1))
        fields[i] = (fields[i][0], fields[i][1] + draw(st.sampled_from([" ", "\t", " \t"])))
    separator = draw(st.sampled_from([": ", ":", ":  ", ": "]))
    head = f"{method} {path} {version}\r\n" + "".join(
        f"{n}{separator}{v}\r\n" for n, v in fields) + "\r\n"
    data = head.encode("latin-1")
    return data + data if twist == "twice" else data
