"""A corpus of raw HTTP/1.1 requests and what the sans-I/O parser must make of them.

Each :class:`Case` is the bytes a client sends plus the expected outcome:

* ``events``: the events in order, with every :class:`~wsgiloop.http.RequestHead`
  summarized as a dict (see :func:`head`), the body data of one message concatenated into
  a single ``bytes`` item and :data:`END` for ``END_OF_MESSAGE``.  Several requests may be
  pipelined; the driver calls ``start_next_request()`` after each ``END``.
* ``error``: when set, the status of the :class:`~wsgiloop.http.ProtocolError` that must
  follow those events (the events before the error must match too).

``limits`` replaces the default :class:`~wsgiloop.http.HTTPLimits` for the case.
``tests/test_http_parser.py`` replays every case whole, byte by byte and split at random.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsgiloop.http import HTTPLimits

END = "END_OF_MESSAGE"

#: a head field whose value the case does not check
ANY = object()


def head(method: str = "GET", path: str = "/", *, query: str = "",
         version: str = "HTTP/1.1", host: str | None = "example.com",
         keep_alive: bool | None = None, chunked: bool = False,
         content_length: int | None = None, expect_continue: bool = False,
         headers=ANY) -> dict:
    """The summary of an expected request head; ``keep_alive`` defaults by version."""
    if keep_alive is None:
        keep_alive = version == "HTTP/1.1"
    return {"method": method, "path": path, "query": query, "version": version,
            "host": host, "keep_alive": keep_alive, "chunked": chunked,
            "content_length": content_length, "expect_continue": expect_continue,
            "headers": headers}


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    events: list = field(default_factory=list)
    error: int | None = None
    limits: HTTPLimits | None = None


def msg(start: str, *fields: str, body: bytes = b"") -> bytes:
    """A request head from its start line and field lines (str, latin-1), then ``body``."""
    return "".join(line + "\r\n" for line in (start, *fields)).encode("latin-1") + b"\r\n" + body


HOST = "Host: example.com"
GET = msg("GET / HTTP/1.1", HOST)
GET_HEAD = head(headers=[("Host", "example.com")])
SMALL = HTTPLimits(max_request_line=40, max_header_count=4, max_header_field_size=40,
                   max_head_size=200, max_body_size=10, max_chunk_line=16)
#: only the head size is small: 42 bytes of request line, Host and blank line, then fields
HEAD_LIMIT = HTTPLimits(max_head_size=100)


def ok(id: str, data: bytes, *events, limits: HTTPLimits | None = None) -> Case:
    return Case(id, data, list(events), None, limits)


def bad(id: str, data: bytes, status: int, *events, limits: HTTPLimits | None = None) -> Case:
    return Case(id, data, list(events), status, limits)


def chunked_post(body: bytes, *fields: str, version: str = "HTTP/1.1") -> bytes:
    return msg(f"POST /up {version}", HOST, "Transfer-Encoding: chunked", *fields, body=body)


CHUNKED_HEAD = head("POST", "/up", chunked=True)

VALID = [
    # -- plain requests ---------------------------------------------------------------------
    ok("get-minimal", GET, GET_HEAD, END),
    ok("get-path-and-query", msg("GET /a/b%20c?x=1&y=2 HTTP/1.1", HOST),
       head(path="/a/b%20c", query="x=1&y=2"), END),
    ok("get-empty-query", msg("GET /p? HTTP/1.1", HOST), head(path="/p", query=""), END),
    ok("get-query-with-question-marks", msg("GET /p?a?b=/c HTTP/1.1", HOST),
       head(path="/p", query="a?b=/c"), END),
    ok("get-headers-kept-in-order",
       msg("GET / HTTP/1.1", "Host: example.com", "Accept: */*", "X-Multi: 1",
           "x-multi: 2", "User-Agent: t/1.0"),
       head(headers=[("Host", "example.com"), ("Accept", "*/*"), ("X-Multi", "1"),
                     ("x-multi", "2"), ("User-Agent", "t/1.0")]), END),
    ok("get-field-ows-stripped",
       msg("GET / HTTP/1.1", "Host:example.com", "X-A: \t a  b \t ", "X-Empty:",
           "X-Spaces:    "),
       head(headers=[("Host", "example.com"), ("X-A", "a  b"), ("X-Empty", ""),
                     ("X-Spaces", "")]), END),
    ok("get-field-obs-text-and-htab",
       msg("GET / HTTP/1.1", HOST, "X-Latin: caf\xe9\tna\xefve"),
       head(headers=[("Host", "example.com"), ("X-Latin", "caf\xe9\tna\xefve")]), END),
    ok("get-field-names-any-case",
       msg("POST / HTTP/1.1", "hOsT: example.com", "CONTENT-LENGTH: 2", body=b"ok"),
       head("POST", content_length=2, headers=[("hOsT", "example.com"),
                                                ("CONTENT-LENGTH", "2")]), b"ok", END),
    ok("get-token-characters-in-names-and-method",
       msg("M-SEARCH_2.x~ / HTTP/1.1", HOST, "X!#$%&'*+.^_`|~9: v"),
       head("M-SEARCH_2.x~", headers=[("Host", "example.com"), ("X!#$%&'*+.^_`|~9", "v")]),
       END),
    ok("get-http-1-2-is-served-as-1-1", msg("GET / HTTP/1.2", HOST), head(), END),
    ok("head-request", msg("HEAD /x HTTP/1.1", HOST), head("HEAD", "/x"), END),
    ok("delete-custom-method", msg("PROPFIND /dav/ HTTP/1.1", HOST, "Depth: 1"),
       head("PROPFIND", "/dav/"), END),

    # -- Content-Length bodies --------------------------------------------------------------
    ok("post-content-length",
       msg("POST /form HTTP/1.1", HOST, "Content-Length: 11", body=b"hello world"),
       head("POST", "/form", content_length=11,
            headers=[("Host", "example.com"), ("Content-Length", "11")]),
       b"hello world", END),
    ok("post-content-length-zero", msg("POST / HTTP/1.1", HOST, "Content-Length: 0"),
       head("POST", content_length=0), END),
    ok("post-content-length-leading-zeros",
       msg("POST / HTTP/1.1", HOST, "Content-Length: 0003", body=b"abc"),
       head("POST", content_length=3), b"abc", END),
    ok("post-binary-body-with-crlf-and-nul",
       msg("PUT /b HTTP/1.1", HOST, "Content-Length: 10", body=b"\r\n\x00\xff\r\n\r\nGE"),
       head("PUT", "/b", content_length=10), b"\r\n\x00\xff\r\n\r\nGE", END),
    ok("post-body-looks-like-a-request",
       msg("POST / HTTP/1.1", HOST, f"Content-Length: {len(GET)}", body=GET),
       head("POST", content_length=len(GET)), GET, END),
    ok("get-with-body", msg("GET / HTTP/1.1", HOST, "Content-Length: 4", body=b"data"),
       head(content_length=4), b"data", END),

    # -- chunked bodies ---------------------------------------------------------------------
    ok("chunked-basic", chunked_post(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
       head("POST", "/up", chunked=True,
            headers=[("Host", "example.com"), ("Transfer-Encoding", "chunked")]),
       b"hello world", END),
    ok("chunked-empty-body", chunked_post(b"0\r\n\r\n"), CHUNKED_HEAD, END),
    ok("chunked-hex-lower", chunked_post(b"a\r\n0123456789\r\n1f\r\n" + b"x" * 31
                                         + b"\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"0123456789" + b"x" * 31, END),
    ok("chunked-hex-upper", chunked_post(b"A\r\n0123456789\r\n1F\r\n" + b"y" * 31
                                         + b"\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"0123456789" + b"y" * 31, END),
    ok("chunked-hex-mixed-case-and-leading-zeros",
       chunked_post(b"00aB\r\n" + b"z" * 0xAB + b"\r\n000\r\n\r\n"),
       CHUNKED_HEAD, b"z" * 0xAB, END),
    ok("chunked-extensions",
       chunked_post(b"5;name=value\r\nhello\r\n3 ; a=\"q s\";b\r\nabc\r\n"
                    b"1;\tx=y\r\n!\r\n0;last=1\r\n\r\n"),
       CHUNKED_HEAD, b"helloabc!", END),
    ok("chunked-trailers",
       chunked_post(b"3\r\nabc\r\n0\r\nX-Checksum: 900150983cd2\r\nX-Other:  1 \r\n\r\n"),
       CHUNKED_HEAD, b"abc", END),
    ok("chunked-trailers-after-empty-body",
       chunked_post(b"0\r\nExpires: never\r\n\r\n"), CHUNKED_HEAD, END),
    ok("chunked-data-with-crlf-inside", chunked_post(b"4\r\n\r\n\r\n\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"\r\n\r\n", END),
    ok("chunked-one-byte-chunks",
       chunked_post(b"".join(b"1\r\n%c\r\n" % c for c in b"bytes") + b"0\r\n\r\n"),
       CHUNKED_HEAD, b"bytes", END),
    ok("chunked-extensions-bws-and-quoted-pairs",
       chunked_post(b'2 \t; a = b\t;c="x\\"y\\\\";d\r\nab\r\n'
                    b'1;e=""\r\nc\r\n0 ; f="\tg h\xe9"\r\n\r\n'),
       CHUNKED_HEAD, b"abc", END),
    ok("chunked-fifteen-hex-digits", chunked_post(b"000000000000003\r\nabc\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"abc", END),
    ok("chunked-trailer-ows-and-empty-value",
       chunked_post(b"0\r\nX-A:\r\nX-B:\t v \t\r\n\r\n"), CHUNKED_HEAD, END),
    ok("transfer-encoding-case-insensitive",
       msg("POST /up HTTP/1.1", HOST, "Transfer-Encoding: Chunked", body=b"2\r\nhi\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"hi", END),

    ok("repeated-list-fields-are-kept",
       msg("GET / HTTP/1.1", HOST, "Accept: a", "Accept: b", "Cookie: a=1", "Cookie: b=2",
           "Cache-Control: no-cache", "Cache-Control: max-age=0"),
       head(headers=[("Host", "example.com"), ("Accept", "a"), ("Accept", "b"),
                     ("Cookie", "a=1"), ("Cookie", "b=2"), ("Cache-Control", "no-cache"),
                     ("Cache-Control", "max-age=0")]), END),
    ok("singletons-once-each",
       msg("POST / HTTP/1.1", HOST, "Content-Type: text/plain", "Authorization: Basic eA==",
           "Proxy-Authorization: Basic eQ==", "Content-Length: 1", body=b"z"),
       head("POST", content_length=1), b"z", END),

    # -- pipelining and empty lines ---------------------------------------------------------
    ok("pipelined-three",
       GET + msg("POST /p HTTP/1.1", HOST, "Content-Length: 3", body=b"abc")
       + msg("GET /last?q HTTP/1.1", HOST, "Connection: close"),
       GET_HEAD, END, head("POST", "/p", content_length=3), b"abc", END,
       head(path="/last", query="q", keep_alive=False), END),
    ok("pipelined-chunked-then-get",
       chunked_post(b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n") + GET,
       CHUNKED_HEAD, b"abc", END, GET_HEAD, END),
    ok("pipelined-body-then-chunked",
       msg("PUT / HTTP/1.1", HOST, "Content-Length: 1", body=b"1")
       + chunked_post(b"1\r\n2\r\n0\r\n\r\n"),
       head("PUT", content_length=1), b"1", END, CHUNKED_HEAD, b"2", END),
    ok("leading-empty-lines", b"\r\n\r\n" + GET, GET_HEAD, END),
    ok("leading-empty-line-single", b"\r\n" + GET, GET_HEAD, END),
    ok("empty-lines-between-pipelined", GET + b"\r\n\r\n" + GET,
       GET_HEAD, END, GET_HEAD, END),

    # -- request-target forms ---------------------------------------------------------------
    ok("absolute-form-host-from-authority",
       msg("GET http://other.example:8080/p/q?x=1 HTTP/1.1", HOST),
       head(path="/p/q", query="x=1", host="other.example:8080"), END),
    ok("absolute-form-without-path", msg("GET http://other.example HTTP/1.1", HOST),
       head(path="/", host="other.example"), END),
    ok("absolute-form-query-without-path", msg("GET http://o.example?a=b HTTP/1.1", HOST),
       head(path="/", query="a=b", host="o.example"), END),
    ok("absolute-form-https-upper-scheme",
       msg("GET HTTPS://secure.example/ HTTP/1.1", HOST),
       head(host="secure.example"), END),
    ok("absolute-form-http10-without-host", msg("GET http://o.example/x HTTP/1.0"),
       head(path="/x", host="o.example", version="HTTP/1.0"), END),
    ok("options-asterisk", msg("OPTIONS * HTTP/1.1", HOST),
       head("OPTIONS", "*"), END),
    ok("connect-authority-form", msg("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"),
       head("CONNECT", "", host="example.com:443"), END),
    ok("connect-ipv6-authority",
       msg("CONNECT [2001:db8::1]:443 HTTP/1.1", "Host: [2001:db8::1]:443"),
       head("CONNECT", "", host="[2001:db8::1]:443"), END),

    # -- Host -------------------------------------------------------------------------------
    ok("host-with-port", msg("GET / HTTP/1.1", "Host: example.com:8080"),
       head(host="example.com:8080"), END),
    ok("host-ipv6", msg("GET / HTTP/1.1", "Host: [::1]:8000"), head(host="[::1]:8000"), END),
    ok("host-empty-value", msg("GET / HTTP/1.1", "Host:"), head(host=""), END),
    ok("http10-without-host", msg("GET / HTTP/1.0"),
       head(version="HTTP/1.0", host=None, headers=[]), END),
    ok("http10-with-host", msg("GET / HTTP/1.0", HOST), head(version="HTTP/1.0"), END),

    # -- persistence ------------------------------------------------------------------------
    ok("http10-default-close", msg("GET / HTTP/1.0", HOST),
       head(version="HTTP/1.0", keep_alive=False), END),
    ok("http10-keep-alive", msg("GET / HTTP/1.0", "Connection: keep-alive"),
       head(version="HTTP/1.0", host=None, keep_alive=True), END),
    ok("http10-keep-alive-any-case-in-list", msg("GET / HTTP/1.0", "Connection: foo, Keep-Alive"),
       head(version="HTTP/1.0", host=None, keep_alive=True), END),
    ok("http10-keep-alive-and-close", msg("GET / HTTP/1.0", "Connection: keep-alive, close"),
       head(version="HTTP/1.0", host=None, keep_alive=False), END),
    ok("http10-other-connection-token", msg("GET / HTTP/1.0", "Connection: upgrade"),
       head(version="HTTP/1.0", host=None, keep_alive=False), END),
    ok("http10-keep-alive-pipelined",
       msg("GET /1 HTTP/1.0", "Connection: keep-alive") + msg("GET /2 HTTP/1.0"),
       head(path="/1", version="HTTP/1.0", host=None, keep_alive=True), END,
       head(path="/2", version="HTTP/1.0", host=None, keep_alive=False), END),
    ok("http11-default-keep-alive", GET, head(keep_alive=True), END),
    ok("http11-close", msg("GET / HTTP/1.1", HOST, "Connection: close"),
       head(keep_alive=False), END),
    ok("http11-close-upper-case", msg("GET / HTTP/1.1", HOST, "Connection: CLOSE"),
       head(keep_alive=False), END),
    ok("http11-close-in-second-field",
       msg("GET / HTTP/1.1", HOST, "Connection: te", "Connection: close"),
       head(keep_alive=False), END),
    ok("http11-close-in-list", msg("GET / HTTP/1.1", HOST, "Connection: keep-alive,close"),
       head(keep_alive=False), END),
    ok("http11-other-connection-token", msg("GET / HTTP/1.1", HOST, "Connection: upgrade"),
       head(keep_alive=True), END),

    # -- Expect -----------------------------------------------------------------------------
    ok("expect-continue-content-length",
       msg("POST / HTTP/1.1", HOST, "Content-Length: 2", "Expect: 100-continue", body=b"hi"),
       head("POST", content_length=2, expect_continue=True), b"hi", END),
    ok("expect-continue-chunked",
       chunked_post(b"2\r\nhi\r\n0\r\n\r\n", "Expect: 100-Continue"),
       head("POST", "/up", chunked=True, expect_continue=True), b"hi", END),
    ok("expect-continue-without-body", msg("GET / HTTP/1.1", HOST, "Expect: 100-continue"),
       head(expect_continue=False), END),
    ok("expect-continue-zero-length",
       msg("POST / HTTP/1.1", HOST, "Content-Length: 0", "Expect: 100-continue"),
       head("POST", content_length=0, expect_continue=False), END),
    ok("expect-continue-ignored-in-http10",
       msg("POST / HTTP/1.0", "Content-Length: 2", "Expect: 100-continue", body=b"hi"),
       head("POST", version="HTTP/1.0", host=None, content_length=2, expect_continue=False),
       b"hi", END),

    # -- limits, at the boundary ------------------------------------------------------------
    ok("limit-request-line-exact", msg("GET /" + "a" * 26 + " HTTP/1.1", HOST),
       head(path="/" + "a" * 26), END, limits=SMALL),
    ok("limit-header-count-exact", msg("GET / HTTP/1.1", HOST, "A: 1", "B: 2", "C: 3"),
       head(), END, limits=SMALL),
    ok("limit-field-size-exact", msg("GET / HTTP/1.1", HOST, "X: " + "v" * 37),
       head(), END, limits=SMALL),
    ok("limit-head-size-exact", msg("GET / HTTP/1.1", HOST, "X: " + "v" * 58),
       head(), END, limits=HEAD_LIMIT),
    ok("limit-head-size-exact-pipelined",
       msg("GET / HTTP/1.1", HOST, "X: " + "v" * 58) * 2,
       head(), END, head(), END, limits=HEAD_LIMIT),
    ok("limit-body-exact-content-length",
       msg("POST / HTTP/1.1", HOST, "Content-Length: 10", body=b"0123456789"),
       head("POST", content_length=10), b"0123456789", END, limits=SMALL),
    ok("limit-body-exact-chunked",
       chunked_post(b"4\r\n0123\r\n6\r\n456789\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"0123456789", END, limits=SMALL),
    ok("limit-chunk-line-exact", chunked_post(b"3;" + b"e" * 14 + b"\r\nabc\r\n0\r\n\r\n"),
       CHUNKED_HEAD, b"abc", END, limits=SMALL),
    ok("limit-body-zero-means-unlimited",
       msg("POST / HTTP/1.1", HOST, "Content-Length: 3000", body=b"x" * 3000),
       head("POST", content_length=3000), b"x" * 3000, END,
       limits=HTTPLimits(max_body_size=0)),
]

INVALID = [
    # -- request line -----------------------------------------------------------------------
    bad("version-lowercase", msg("GET / http/1.1", HOST), 400),
    bad("version-http2", msg("GET / HTTP/2.0", HOST), 505),
    bad("version-http3", msg("GET / HTTP/3.0", HOST), 505),
    bad("version-http0", msg("GET / HTTP/0.9", HOST), 505),
    bad("version-two-digit-major", msg("GET / HTTP/10.0", HOST), 505),
    bad("version-without-minor", msg("GET / HTTP/1", HOST), 400),
    bad("version-missing", msg("GET /", HOST), 400),
    bad("request-line-double-space", msg("GET  / HTTP/1.1", HOST), 400),
    bad("request-line-trailing-space", msg("GET / HTTP/1.1 ", HOST), 400),
    bad("request-line-leading-space", msg(" GET / HTTP/1.1", HOST), 400),
    bad("request-line-tab", msg("GET\t/ HTTP/1.1", HOST), 400),
    bad("request-line-extra-word", msg("GET / x HTTP/1.1", HOST), 400),
    bad("request-line-no-target", msg("GET HTTP/1.1", HOST), 400),
    bad("method-not-token", msg("G(T / HTTP/1.1", HOST), 400),
    bad("target-non-ascii", msg("GET /caf\xe9 HTTP/1.1", HOST), 400),
    bad("target-nul", msg("GET /\x00 HTTP/1.1", HOST), 400),
    bad("target-relative", msg("GET index.html HTTP/1.1", HOST), 400),
    bad("asterisk-with-get", msg("GET * HTTP/1.1", HOST), 400),
    bad("absolute-form-ftp", msg("GET ftp://example.com/ HTTP/1.1", HOST), 400),
    bad("absolute-form-userinfo", msg("GET http://user@example.com/ HTTP/1.1", HOST), 400),
    bad("absolute-form-empty-authority", msg("GET http:///x HTTP/1.1", HOST), 400),
    bad("absolute-form-fragment", msg("GET http://example.com/#frag HTTP/1.1", HOST), 400),
    bad("authority-form-without-connect", msg("GET example.com:80 HTTP/1.1", HOST), 400),
    bad("connect-origin-form", msg("CONNECT /x HTTP/1.1", HOST), 400),
    bad("connect-asterisk", msg("CONNECT * HTTP/1.1", HOST), 400),
    bad("connect-absolute-form", msg("CONNECT http://example.com:443/ HTTP/1.1", HOST), 400),
    bad("connect-bad-authority", msg("CONNECT user@example.com:443 HTTP/1.1", HOST), 400),
    bad("only-crlfs-then-bad-line", b"\r\n\r\nHELLO\r\n\r\n", 400),

    # -- line endings -----------------------------------------------------------------------
    bad("bare-lf-line-endings", b"GET / HTTP/1.1\nHost: example.com\n\n", 400),
    bad("bare-lf-after-request-line", b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", 400),
    bad("bare-lf-after-field", b"GET / HTTP/1.1\r\nHost: example.com\n\r\n", 400),
    bad("bare-lf-end-of-head", b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", 400),
    bad("bare-cr-line-endings", b"GET / HTTP/1.1\rHost: example.com\r\r", 400),
    bad("bare-cr-in-request-line", b"GET /\r HTTP/1.1\r\nHost: example.com\r\n\r\n", 400),
    bad("bare-cr-before-crlf", b"GET / HTTP/1.1\r\r\nHost: example.com\r\n\r\n", 400),
    bad("leading-bare-lf", b"\n" + GET, 400),
    bad("leading-bare-cr", b"\r" + GET, 400),
    bad("leading-cr-cr-lf", b"\r\r\n" + GET, 400),
    bad("leading-crlf-then-bare-lf", b"\r\n\n" + GET, 400),

    # several errors: the one the shortest prefix shows, however the bytes are split
    bad("bare-lf-in-field-and-bad-version", b"GET / HTTP/0.1\r\nHost: x\r\nA\nB: 1\r\n\r\n",
        400),
    bad("bare-cr-in-field-and-no-host", b"GET / HTTP/1.1\r\nA\rB: 1\r\n\r\n", 400),
    bad("bare-lf-in-long-request-line", b"GET /\n" + b"a" * 100, 400, limits=SMALL),
    bad("bare-lf-then-request-line-too-long", b"GET /\n" + b"a" * 100 + b"\r\n\r\n", 400,
        limits=SMALL),
    bad("request-line-too-long-then-bare-lf", b"GET /" + b"a" * 100 + b"\n\r\n\r\n", 414,
        limits=SMALL),
    bad("head-too-large-then-bare-lf", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 90
        + b"\n\r\n\r\n", 431, limits=HEAD_LIMIT),
    bad("trailer-bare-lf-in-large-section",
        chunked_post(b"0\r\nX: a\nb" + b"c" * 300 + b"\r\n\r\n"), 400, CHUNKED_HEAD,
        limits=SMALL),
    bad("trailer-section-too-large-then-bare-cr",
        chunked_post(b"0\r\nX: " + b"c" * 300 + b"\rb\r\n\r\n"), 431, CHUNKED_HEAD,
        limits=SMALL),

    # -- field syntax -----------------------------------------------------------------------
    bad("space-before-colon", msg("GET / HTTP/1.1", "Host : example.com"), 400),
    bad("tab-before-colon", msg("GET / HTTP/1.1", HOST, "X-A\t: 1"), 400),
    bad("obs-fold-space", msg("GET / HTTP/1.1", HOST, "X-A: a", " b"), 400),
    bad("obs-fold-tab", msg("GET / HTTP/1.1", HOST, "X-A: a", "\tb"), 400),
    bad("obs-fold-first-field", msg("GET / HTTP/1.1", " X-A: a", HOST), 400),
    bad("nul-in-value", msg("GET / HTTP/1.1", HOST, "X-A: a\x00b"), 400),
    bad("cr-in-value", msg("GET / HTTP/1.1", HOST, "X-A: a\rb"), 400),
    bad("lf-in-value", msg("GET / HTTP/1.1", HOST, "X-A: a\nb"), 400),
    bad("ctl-0x01-in-value", msg("GET / HTTP/1.1", HOST, "X-A: a\x01b"), 400),
    bad("ctl-0x1f-in-value", msg("GET / HTTP/1.1", HOST, "X-A: \x1f"), 400),
    bad("del-in-value", msg("GET / HTTP/1.1", HOST, "X-A: a\x7f"), 400),
    bad("name-with-space", msg("GET / HTTP/1.1", HOST, "X A: 1"), 400),
    bad("name-with-at", msg("GET / HTTP/1.1", HOST, "X@A: 1"), 400),
    bad("name-with-brackets", msg("GET / HTTP/1.1", HOST, "[x]: 1"), 400),
    bad("name-non-ascii", msg("GET / HTTP/1.1", HOST, "X-\xe9: 1"), 400),
    bad("name-empty", msg("GET / HTTP/1.1", HOST, ": value"), 400),
    bad("field-without-colon", msg("GET / HTTP/1.1", HOST, "NoColonHere"), 400),

    # a colon-less line is refused whatever fields earlier requests carried
    bad("field-without-colon-after-same-name",
        msg("GET / HTTP/1.1", HOST, "Foo: 1") + msg("GET / HTTP/1.1", HOST, "Foo"), 400,
        head(), END),
    bad("field-without-colon-after-many-names",
        msg("GET / HTTP/1.1", HOST, "Accept: 1", "Foo-Bar: 2", "x-y: 3")
        + msg("GET / HTTP/1.1", HOST, "Accept: 1", "Foo-Bar", "x-y: 3"), 400, head(), END),
    bad("host-without-colon-after-host", GET + msg("GET / HTTP/1.1", "Host"), 400,
        GET_HEAD, END),
    bad("host-without-colon-before-host", GET + msg("GET / HTTP/1.1", "Host", HOST), 400,
        GET_HEAD, END),
    bad("host-malformed-after-valid-host", GET + msg("GET / HTTP/1.1", "Host: example.com:x"),
        400, GET_HEAD, END),

    # -- Host -------------------------------------------------------------------------------
    bad("host-missing-http11", msg("GET / HTTP/1.1", "Accept: */*"), 400),
    bad("host-missing-absolute-form", msg("GET http://example.com/ HTTP/1.1"), 400),
    bad("host-twice", msg("GET / HTTP/1.1", HOST, "Host: other.example"), 400),
    bad("host-twice-identical", msg("GET / HTTP/1.1", HOST, HOST), 400),
    bad("host-twice-http10", msg("GET / HTTP/1.0", HOST, HOST), 400),
    bad("host-with-space", msg("GET / HTTP/1.1", "Host: exa mple.com"), 400),
    bad("host-with-userinfo", msg("GET / HTTP/1.1", "Host: user@example.com"), 400),
    bad("host-bad-port", msg("GET / HTTP/1.1", "Host: example.com:http"), 400),
    bad("host-list", msg("GET / HTTP/1.1", "Host: a.example, b.example"), 400),

    # -- framing ----------------------------------------------------------------------------
    bad("cl-and-te", msg("POST / HTTP/1.1", HOST, "Content-Length: 5",
                         "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    bad("te-and-cl", msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                         "Content-Length: 5", body=b"0\r\n\r\n"), 400),
    bad("smuggling-cl-te-embedded-request",
        msg("POST / HTTP/1.1", HOST, "Content-Length: 30", "Transfer-Encoding: chunked",
            body=b"0\r\n\r\n" + msg("GET /admin HTTP/1.1", HOST)), 400),
    bad("smuggling-te-cl-embedded-request",
        msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Content-Length: 4",
            body=b"1e\r\n" + msg("GET /admin HTTP/1.1", HOST) + b"\r\n0\r\n\r\n"), 400),
    bad("cl-differing-fields", msg("POST / HTTP/1.1", HOST, "Content-Length: 3",
                                   "Content-Length: 4", body=b"abcd"), 400),
    bad("cl-differing-list", msg("POST / HTTP/1.1", HOST, "Content-Length: 3, 4",
                                 body=b"abcd"), 400),
    bad("cl-same-value-different-spelling", msg("POST / HTTP/1.1", HOST, "Content-Length: 3",
                                                "Content-Length: 03", body=b"abc"), 400),
    bad("cl-repeated-same-field", msg("POST / HTTP/1.1", HOST, "Content-Length: 3",
                                      "Content-Length: 3", body=b"abc"), 400),
    bad("cl-repeated-same-list", msg("POST / HTTP/1.1", HOST, "Content-Length: 3, 3,3",
                                     body=b"abc"), 400),
    bad("cl-list-5-5", msg("POST / HTTP/1.1", HOST, "Content-Length: 5, 5", body=b"abcde"),
        400),
    bad("cl-zero-twice", msg("POST / HTTP/1.1", HOST, "Content-Length: 0",
                             "content-length: 0"), 400),
    bad("content-type-twice", msg("POST / HTTP/1.1", HOST, "Content-Type: text/plain",
                                  "Content-Type: application/json", "Content-Length: 2",
                                  body=b"{}"), 400),
    bad("content-type-twice-identical", msg("GET / HTTP/1.1", HOST, "Content-Type: a/b",
                                            "content-type: a/b"), 400),
    bad("authorization-twice", msg("GET / HTTP/1.1", HOST, "Authorization: Basic eA==",
                                   "Authorization: Bearer t"), 400),
    bad("proxy-authorization-twice", msg("GET / HTTP/1.1", HOST, "Proxy-Authorization: a",
                                         "PROXY-AUTHORIZATION: a"), 400),
    bad("cl-not-digits", msg("POST / HTTP/1.1", HOST, "Content-Length: abc"), 400),
    bad("cl-negative", msg("POST / HTTP/1.1", HOST, "Content-Length: -1"), 400),
    bad("cl-plus-sign", msg("POST / HTTP/1.1", HOST, "Content-Length: +5", body=b"abcde"), 400),
    bad("cl-hex", msg("POST / HTTP/1.1", HOST, "Content-Length: 0x5", body=b"abcde"), 400),
    bad("cl-decimal-point", msg("POST / HTTP/1.1", HOST, "Content-Length: 5.0"), 400),
    bad("cl-inner-space", msg("POST / HTTP/1.1", HOST, "Content-Length: 1 2"), 400),
    bad("cl-empty", msg("POST / HTTP/1.1", HOST, "Content-Length:"), 400),
    bad("cl-empty-list-element", msg("POST / HTTP/1.1", HOST, "Content-Length: 5,"), 400),
    bad("cl-non-ascii-digit", msg("POST / HTTP/1.1", HOST, "Content-Length: \xb2"), 400),
    bad("cl-overflow", msg("POST / HTTP/1.1", HOST, "Content-Length: " + "9" * 19), 400),
    bad("te-chunked-twice-list", chunked_post(b"0\r\n\r\n").replace(
        b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked, chunked"), 400),
    bad("te-chunked-twice-fields",
        chunked_post(b"0\r\n\r\n", "Transfer-Encoding: chunked"), 400),
    bad("te-gzip-alone", msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip"), 400),
    bad("te-chunked-not-last", msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked, gzip",
                                   body=b"0\r\n\r\n"), 400),
    bad("te-gzip-chunked", msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip, chunked",
                               body=b"0\r\n\r\n"), 501),
    bad("te-gzip-chunked-two-fields",
        msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip", "Transfer-Encoding: chunked",
            body=b"0\r\n\r\n"), 501),
    bad("te-identity-chunked", msg("POST / HTTP/1.1", HOST,
                                   "Transfer-Encoding: identity, chunked", body=b"0\r\n\r\n"), 501),
    bad("te-empty", msg("POST / HTTP/1.1", HOST, "Transfer-Encoding:"), 400),
    bad("te-not-token", msg("POST / HTTP/1.1", HOST, "Transfer-Encoding: \"chunked\""), 400),
    bad("te-in-http10", chunked_post(b"0\r\n\r\n", version="HTTP/1.0"), 400),

    # -- chunked body -----------------------------------------------------------------------
    bad("chunk-size-0x-prefix", chunked_post(b"0x5\r\nhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-size-negative", chunked_post(b"-1\r\nx\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-size-leading-space", chunked_post(b" 5\r\nhello\r\n0\r\n\r\n"), 400,
        CHUNKED_HEAD),
    bad("chunk-size-plus", chunked_post(b"+5\r\nhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-size-not-hex", chunked_post(b"g\r\nx\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-size-empty", chunked_post(b"\r\nx\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-size-overflow-20-digits",
        chunked_post(b"1" + b"0" * 19 + b"\r\nx\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-size-overflow-16-digits",
        chunked_post(b"ffffffffffffffff\r\nx\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    # RFC 9112 7.1: chunk-size = 1*HEXDIG; whitespace (BWS) only before a ";"
    *[bad(id, chunked_post(body), 400, CHUNKED_HEAD) for id, body in [
        ("chunk-size-trailing-space", b"5 \r\nhello\r\n0\r\n\r\n"),
        ("chunk-size-trailing-tab", b"5\t\r\nhello\r\n0\r\n\r\n"),
        ("chunk-size-trailing-spaces-and-tabs", b"5 \t \r\nhello\r\n0\r\n\r\n"),
        ("last-chunk-trailing-space", b"0 \r\n\r\n"),
        ("last-chunk-trailing-tab", b"0\t\r\n\r\n"),
        ("chunk-size-space-inside", b"1 0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"),
        ("chunk-size-only-extension", b";a=b\r\nx\r\n0\r\n\r\n"),
        ("chunk-size-only-whitespace", b" \r\nx\r\n0\r\n\r\n"),
        ("chunk-size-0x-upper", b"0X5\r\nhello\r\n0\r\n\r\n"),
        ("chunk-size-minus-zero", b"-0\r\n\r\n"),
        ("chunk-size-plus-zero", b"+0\r\n\r\n"),
        ("chunk-size-underscore", b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"),
        ("chunk-size-sixteen-digits-leading-zeros", b"0000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("chunk-size-non-ascii-digit", b"\xb2\r\nxx\r\n0\r\n\r\n"),
        ("chunk-ext-empty-name", b"5;\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-empty-name-with-value", b"5;=v\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-empty-value", b"5;a=\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-trailing-semicolon", b"5;a=b;\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-trailing-space", b"5;a=b \r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-name-trailing-space", b"5;a \r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-name-not-token", b"5;a@b\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-name-with-space", b"5;a b\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-value-not-token", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-value-separator", b"5;a=(b)\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-value-two-equals", b"5;a==b\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-value-obs-text-unquoted", b"5;a=\xe9\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-quoted-unterminated", b'5;a="b\r\nhello\r\n0\r\n\r\n'),
        ("chunk-ext-quoted-then-token", b'5;a="b"c\r\nhello\r\n0\r\n\r\n'),
        ("chunk-ext-quoted-escaped-end", b'5;a="b\\"\r\nhello\r\n0\r\n\r\n'),
        ("chunk-ext-quoted-name", b'5;"a"=b\r\nhello\r\n0\r\n\r\n'),
        ("chunk-ext-quoted-del", b'5;a="\x7f"\r\nhello\r\n0\r\n\r\n'),
        ("chunk-ext-quoted-nul", b'5;a="\x00"\r\nhello\r\n0\r\n\r\n'),
        ("chunk-ext-no-semicolon", b"5 a=b\r\nhello\r\n0\r\n\r\n"),
        ("chunk-ext-comma", b"5,a=b\r\nhello\r\n0\r\n\r\n"),
        ("last-chunk-ext-empty-name", b"0;\r\n\r\n"),
        ("last-chunk-ext-trailing-space", b"0;a \r\n\r\n"),
    ]],
    # RFC 9110 6.5.1: no framing, routing, hop-by-hop, authentication or content
    # metadata fields in a trailer section
    *[bad(f"trailer-forbidden-{field.partition(':')[0].lower()}",
          chunked_post(b"0\r\n%s\r\n\r\n" % field.encode()), 400, CHUNKED_HEAD)
      for field in ["Content-Length: 5", "Transfer-Encoding: chunked", "Host: evil.example",
                    "TE: trailers", "Trailer: X", "Connection: close",
                    "content-type: text/plain", "Authorization: Basic eA==",
                    "Proxy-Authorization: x", "Expect: 100-continue", "Upgrade: h2c",
                    "Keep-Alive: timeout=5", "Proxy-Connection: close",
                    "Content-Encoding: gzip", "Content-Range: bytes 0-1/2",
                    "Range: bytes=0-1", "Cookie: a=1", "Max-Forwards: 1",
                    "Cache-Control: no-cache", "If-None-Match: *", "Forwarded: for=x",
                    "X-Forwarded-For: 10.0.0.1"]],
    bad("trailer-forbidden-after-allowed",
        chunked_post(b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nCONTENT-LENGTH: 3\r\n\r\n"), 400,
        CHUNKED_HEAD, b"abc"),
    bad("trailer-field-too-large", chunked_post(b"0\r\nT: " + b"t" * 38 + b"\r\n\r\n"), 431,
        CHUNKED_HEAD, limits=SMALL),
    bad("trailer-name-not-token", chunked_post(b"0\r\nX@Y: 1\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("trailer-bare-name", chunked_post(b"0\r\nX-Sum\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-data-without-crlf", chunked_post(b"5\r\nhelloX\r\n0\r\n\r\n"), 400,
        CHUNKED_HEAD, b"hello"),
    bad("chunk-data-too-long", chunked_post(b"3\r\nhello\r\n0\r\n\r\n"), 400,
        CHUNKED_HEAD, b"hel"),
    bad("chunk-data-bare-lf", chunked_post(b"5\r\nhello\n0\r\n\r\n"), 400,
        CHUNKED_HEAD, b"hello"),
    bad("chunk-data-bare-cr", chunked_post(b"5\r\nhello\r0\r\n\r\n"), 400,
        CHUNKED_HEAD, b"hello"),
    bad("chunk-second-data-without-crlf",
        chunked_post(b"2\r\nab\r\n2\r\ncdef\r\n0\r\n\r\n"), 400, CHUNKED_HEAD, b"abcd"),
    bad("chunk-line-bare-lf", chunked_post(b"5\nhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-line-bare-cr", chunked_post(b"5\rhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-line-cr-cr-lf", chunked_post(b"5\r\r\nhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-ext-bare-lf", chunked_post(b"5;a\nb\r\nhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("chunk-ext-ctl", chunked_post(b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("last-chunk-bare-lf", chunked_post(b"0\n\r\n"), 400, CHUNKED_HEAD),
    bad("trailer-end-bare-lf", chunked_post(b"0\r\n\n"), 400, CHUNKED_HEAD),
    bad("trailer-bare-lf", chunked_post(b"0\r\nX: 1\nY: 2\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("trailer-obs-fold", chunked_post(b"0\r\nX: 1\r\n 2\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("trailer-without-colon", chunked_post(b"0\r\nnonsense\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("trailer-space-before-colon", chunked_post(b"0\r\nX : 1\r\n\r\n"), 400, CHUNKED_HEAD),
    bad("trailer-nul", chunked_post(b"0\r\nX: \x00\r\n\r\n"), 400, CHUNKED_HEAD),

    # -- Expect -----------------------------------------------------------------------------
    bad("expect-unknown", msg("POST / HTTP/1.1", HOST, "Content-Length: 2", "Expect: foo",
                              body=b"hi"), 417),
    bad("expect-unknown-without-body", msg("GET / HTTP/1.1", HOST, "Expect: 200-ok"), 417),
    bad("expect-continue-and-more", msg("POST / HTTP/1.1", HOST, "Content-Length: 2",
                                        "Expect: 100-continue, foo", body=b"hi"), 417),
    bad("expect-continue-with-param", msg("POST / HTTP/1.1", HOST, "Content-Length: 2",
                                          "Expect: 100-continue;x=1", body=b"hi"), 417),

    # -- limits -----------------------------------------------------------------------------
    bad("request-line-too-long", msg("GET /" + "a" * 27 + " HTTP/1.1", HOST), 414,
        limits=SMALL),
    bad("request-line-too-long-default-limit", msg("GET /" + "a" * 8200 + " HTTP/1.1", HOST),
        414),
    bad("request-line-too-long-unterminated", b"GET /" + b"a" * 100, 414, limits=SMALL),
    bad("request-line-longer-than-head-limit", msg("GET /" + "a" * 300 + " HTTP/1.1", HOST),
        414, limits=SMALL),
    bad("too-many-fields", msg("GET / HTTP/1.1", HOST, "A: 1", "B: 2", "C: 3", "D: 4"), 431,
        limits=SMALL),
    bad("field-too-large", msg("GET / HTTP/1.1", HOST, "X: " + "v" * 38), 431, limits=SMALL),
    bad("head-too-large", msg("GET / HTTP/1.1", HOST, "X: " + "v" * 59), 431,
        limits=HEAD_LIMIT),
    bad("head-too-large-many-small-fields",
        msg("GET / HTTP/1.1", HOST, *["X: v"] * 20), 431, limits=HEAD_LIMIT),
    bad("head-too-large-unterminated", msg("GET / HTTP/1.1", HOST, "X: " + "v" * 90)[:-2],
        431, limits=HEAD_LIMIT),
    bad("head-too-large-in-second-request",
        GET + msg("GET / HTTP/1.1", HOST, "X: " + "v" * 59), 431, GET_HEAD, END,
        limits=HEAD_LIMIT),
    bad("body-too-large-content-length",
        msg("POST / HTTP/1.1", HOST, "Content-Length: 11", body=b"0123456789a"), 413,
        limits=SMALL),
    bad("body-too-large-content-length-no-data",
        msg("POST / HTTP/1.1", HOST, "Content-Length: 1000000"), 413, limits=SMALL),
    bad("body-too-large-chunked-one-chunk", chunked_post(b"b\r\n0123456789a\r\n0\r\n\r\n"),
        413, CHUNKED_HEAD, limits=SMALL),
    bad("body-too-large-chunked-sum",
        chunked_post(b"6\r\n012345\r\n5\r\n6789a\r\n0\r\n\r\n"), 413,
        CHUNKED_HEAD, b"012345", limits=SMALL),
    bad("chunk-line-too-long", chunked_post(b"3;" + b"e" * 15 + b"\r\nabc\r\n0\r\n\r\n"),
        400, CHUNKED_HEAD, limits=SMALL),
    bad("chunk-line-too-long-unterminated", chunked_post(b"3;" + b"e" * 40),
        400, CHUNKED_HEAD, limits=SMALL),
    bad("trailers-too-large", chunked_post(b"0\r\n" + b"T: " + b"t" * 250 + b"\r\n" * 2),
        431, CHUNKED_HEAD, limits=SMALL),
    bad("trailers-too-large-many-lines",
        chunked_post(b"0\r\n" + b"T: tttttttttttttttttttttttttttttt\r\n" * 7 + b"\r\n"),
        431, CHUNKED_HEAD, limits=SMALL),

    # -- errors after a good request --------------------------------------------------------
    bad("pipelined-good-then-bad", GET + b"GET / HTTP/2.0\r\n\r\n" + GET, 505,
        GET_HEAD, END),
    bad("pipelined-good-then-bare-lf", GET + b"GET / HTTP/1.1\nHost: x\n\n", 400,
        GET_HEAD, END),
    bad("pipelined-body-overrun-looks-like-garbage",
        msg("POST / HTTP/1.1", HOST, "Content-Length: 2", body=b"ab ") + GET, 400,
        head("POST", content_length=2), b"ab", END),
]

CASES = VALID + INVALID
