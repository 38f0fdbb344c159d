"""In-process tests of the WSGI gateway (``wsgiloop.wsgi.WSGIGateway``): the environ it
builds and how it calls an application, over the delegate seam of ``wsgiloop.delegate``.

Requests come from the real parser (``responders.parsed_request``); the responder is
``responders.FakeResponder``, which frames with the real ``ResponseFramer`` and can fill
up or lose its client at will.  The application runs on the calling thread (the
gateway's loop mode), so every test is synchronous.  tests/test_e2e_wsgi.py checks the
same promises over real sockets.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from responders import FakeResponder, parsed_request

from wsgiloop.http.proxies import TrustedProxies
from wsgiloop.wsgi import WSGIGateway

App = Callable[[dict, Callable[..., Any]], Any]


def not_called(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    raise AssertionError("the application was not meant to be called")


def environ_for(raw: bytes, gateway: WSGIGateway | None = None, **request: Any) -> dict:
    """The environ ``gateway`` (one without options by default) builds for ``raw``."""
    gateway = gateway or WSGIGateway(not_called)
    return gateway.build_environ(parsed_request(raw, **request))


def call(app: App, raw: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
         responder: FakeResponder | None = None, **gateway: Any) -> FakeResponder:
    """Hand the request ``raw`` to a gateway serving ``app``; returns the responder."""
    request = parsed_request(raw)
    if responder is None:
        responder = FakeResponder(request.head.method, version=request.head.version)
    WSGIGateway(app, **gateway)(request, responder)
    return responder


class Body:
    """A response iterable that records how far it was iterated and whether it was
    closed; ``fail_at`` raises instead of yielding that chunk."""

    def __init__(self, chunks: list[Any], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.yielded = 0
        self.closed = 0

    def __iter__(self) -> Iterator[Any]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("the iterable failed")
            self.yielded += 1
            yield chunk

    def close(self) -> None:
        self.closed += 1


def streaming(body: Body, status: str = "200 OK",
              headers: list[tuple[str, str]] | None = None) -> App:
    def app(environ: dict, start_response: Callable[..., Any]) -> Body:
        start_response(status, [("Content-Type", "text/plain")] if headers is None
                       else headers)
        return body

    return app


# -- the environ ---------------------------------------------------------------------------


PEP_3333_STRINGS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
                    "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT",
                    "SERVER_PROTOCOL")


def test_pep_3333_required_keys():
    errors = io.StringIO()
    gateway = WSGIGateway(not_called, errors=errors, multithread=False, multiprocess=True)
    environ = environ_for(b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                          gateway)
    for key in PEP_3333_STRINGS:
        assert type(environ[key]) is str, key
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/a/b"
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == "80"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["HTTP_HOST"] == "example.com:8080"
    assert environ["REMOTE_ADDR"] == "10.0.0.1" and environ["REMOTE_PORT"] == "5555"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.input"].read() == b""
    assert environ["wsgi.errors"] is errors
    assert environ["wsgi.multithread"] is False and environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert callable(environ["wsgi.file_wrapper"])
    # Every string is a "native string": latin-1 code points only.
    for key, value in environ.items():
        assert type(key) is str
        if type(value) is str:
            value.encode("latin-1")


def test_defaults_are_stderr_and_multithread():
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert environ["wsgi.errors"] is sys.stderr
    assert environ["wsgi.multithread"] is True and environ["wsgi.multiprocess"] is False


def test_https_scheme_and_port():
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", scheme="https",
                          sockname=("192.0.2.1", 8443))
    assert environ["wsgi.url_scheme"] == "https"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("192.0.2.1", "8443")


@pytest.mark.parametrize("root, target, script_name, path_info", [
    ("", "/x/y", "", "/x/y"),
    ("/app", "/app/x", "/app", "/x"),
    ("/app", "/app/x?q=1", "/app", "/x"),
    ("/app", "/app", "/app", ""),
    ("/app", "/app/", "/app", "/"),
    ("/app", "/apple", "/app", "/apple"),  # a prefix of the name is not the mount point
    ("/app", "/other/app/x", "/app", "/other/app/x"),
    ("/app/", "/app/x", "/app", "/x"),  # a trailing slash is not part of SCRIPT_NAME
    ("/a/b", "/a/b/c", "/a/b", "/c"),
])
def test_script_name_and_path_info_with_a_root_path(root, target, script_name, path_info):
    raw = f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    environ = environ_for(raw, WSGIGateway(not_called, root_path=root))
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_a_non_ascii_root_path_is_a_wsgi_string_and_is_stripped():
    environ = environ_for(b"GET /caf%C3%A9/x HTTP/1.1\r\nHost: x\r\n\r\n",
                          WSGIGateway(not_called, root_path="/café"))
    assert environ["SCRIPT_NAME"] == "/café".encode().decode("latin-1")
    assert environ["PATH_INFO"] == "/x"


@pytest.mark.parametrize("target, path_info", [
    ("/plain", "/plain"),
    ("/a%20b", "/a b"),
    ("/caf%C3%A9", "/café".encode().decode("latin-1")),  # the UTF-8 bytes, as latin-1
    ("/%FF%FE", "/\xff\xfe"),  # not UTF-8 at all: the bytes still survive
    ("/a%2Fb", "/a/b"),
    ("/100%25", "/100%"),
])
def test_path_info_is_percent_decoded_to_latin_1(target, path_info):
    environ = environ_for(f"GET {target}?q=%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert environ["PATH_INFO"] == path_info
    assert environ["PATH_INFO"].encode("latin-1").decode("latin-1") == path_info
    assert environ["QUERY_STRING"] == "q=%C3%A9"  # raw
    assert environ["RAW_URI"] == f"{target}?q=%C3%A9"


def test_absolute_form_target():
    environ = environ_for(b"GET http://example.org:81/p/q?x=1 HTTP/1.1\r\n"
                          b"Host: example.org:81\r\n\r\n")
    assert environ["PATH_INFO"] == "/p/q"
    assert environ["QUERY_STRING"] == "x=1"
    assert environ["HTTP_HOST"] == "example.org:81"


def test_http10_without_host():
    environ = environ_for(b"GET /old HTTP/1.0\r\n\r\n")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert "HTTP_HOST" not in environ
    assert environ["SERVER_NAME"] == "127.0.0.1"


def test_content_type_and_length_of_a_body():
    environ = environ_for(b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: 5\r\n\r\nhello")
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["wsgi.input"].read() == b"hello"


def test_content_length_of_a_chunked_body():
    environ = environ_for(b"POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
    assert environ["CONTENT_LENGTH"] == "11"
    assert environ["wsgi.input"].read() == b"hello world"
    assert environ["HTTP_TRANSFER_ENCODING"] == "chunked"


@pytest.mark.parametrize("header, length", [(b"", ""), (b"Content-Length: 0\r\n", "0")])
def test_content_type_and_length_without_a_body(header, length):
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")
    assert environ["CONTENT_TYPE"] == ""
    assert environ["CONTENT_LENGTH"] == length
    assert environ["wsgi.input"].read() == b""
    assert environ["wsgi.input"].readline() == b""
    assert list(environ["wsgi.input"]) == []


def test_request_headers_become_http_keys():
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: tests/1.0\r\n"
                          b"X-Custom-Header: a value: with colon\r\naccept-encoding: gzip\r\n"
                          b"X-Empty:\r\n\r\n")
    assert environ["HTTP_USER_AGENT"] == "tests/1.0"
    assert environ["HTTP_X_CUSTOM_HEADER"] == "a value: with colon"
    assert environ["HTTP_ACCEPT_ENCODING"] == "gzip"
    assert environ["HTTP_X_EMPTY"] == ""
    assert sorted(k for k in environ if k.startswith("HTTP_")) == [
        "HTTP_ACCEPT_ENCODING", "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_CUSTOM_HEADER",
        "HTTP_X_EMPTY"]


def test_the_table_of_usual_keys_follows_the_rule():
    """build() takes the keys of the usual field names from a fixed table: each must be
    what the rule gives, and no name the rule treats apart may be in it."""
    from wsgiloop.wsgi.environ import _ENVIRON_KEYS
    for name, key in _ENVIRON_KEYS.items():
        assert "_" not in name and name.lower() not in ("content-type", "content-length")
        assert key == "HTTP_" + name.upper().replace("-", "_")
    environ = environ_for(b"GET / HTTP/1.1\r\nhost: x\r\nUSER-AGENT: a\r\nuser-agent: b\r\n"
                          b"Accept: c\r\naccept: d\r\n\r\n")
    assert (environ["HTTP_USER_AGENT"], environ["HTTP_ACCEPT"]) == ("a,b", "c,d")


def test_header_names_with_underscores_are_dropped():
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7\r\n"
                          b"X_Forwarded_For: 6.6.6.6\r\nAuth_User: admin\r\n"
                          b"Content_Length: 9\r\n\r\n")
    assert environ["HTTP_X_FORWARDED_FOR"] == "192.0.2.7"
    assert "HTTP_AUTH_USER" not in environ
    assert environ["CONTENT_LENGTH"] == ""
    assert not any("6.6.6.6" in str(v) or "admin" in str(v) for v in environ.values())


def test_repeated_headers_are_joined():
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n"
                          b"Cookie: a=1\r\nx-dup: 1\r\nAccept: text/plain\r\nCookie: b=2\r\n"
                          b"X-Dup: 2\r\n\r\n")
    assert environ["HTTP_ACCEPT"] == "text/html,text/plain"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"  # cookies join with "; " (RFC 6265)
    assert environ["HTTP_X_DUP"] == "1,2"  # whatever the case of the name


def test_addresses_of_an_ipv6_connection():
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", peer=("::1", 4000, 0, 0),
                          sockname=("::1", 8000, 0, 0))
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("::1", "4000")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("::1", "8000")


@pytest.mark.parametrize("scheme, host, name, port", [
    ("http", b"example.com:8080", "example.com", "80"),
    ("https", b"example.com", "example.com", "443"),
    ("http", b"[::1]:8080", "[::1]", "80"),
])
def test_addresses_of_a_unix_socket_connection(scheme, host, name, port):
    environ = environ_for(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", peer="",
                          sockname="/run/app.sock", scheme=scheme)
    assert environ["REMOTE_ADDR"] == ""
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == (name, port)


def test_forwarded_headers_count_only_from_a_trusted_peer():
    raw = (b"GET / HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 198.51.100.9\r\n"
           b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n")
    gateway = WSGIGateway(not_called, trusted_proxies=TrustedProxies("10.0.0.0/8"))
    trusted = environ_for(raw, gateway)
    assert trusted["REMOTE_ADDR"] == "198.51.100.9"
    assert trusted["wsgi.url_scheme"] == "https"
    assert trusted["HTTP_HOST"] == "example.com"
    untrusted = environ_for(raw, gateway, peer=("192.0.2.1", 5555))
    assert untrusted["REMOTE_ADDR"] == "192.0.2.1"
    assert untrusted["wsgi.url_scheme"] == "http"
    assert untrusted["HTTP_HOST"] == "internal"


def test_each_request_of_a_connection_gets_its_own_environ():
    gateway = WSGIGateway(not_called)
    connection: dict = {}
    first = environ_for(b"POST /1 HTTP/1.1\r\nHost: x\r\nX-First: 1\r\nContent-Type: a/b\r\n"
                        b"Content-Length: 1\r\n\r\n!", gateway, connection_data=connection)
    first["mutated.by.the.app"] = True
    first["REMOTE_ADDR"] = "changed"
    second = environ_for(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n", gateway,
                         connection_data=connection)
    assert second["PATH_INFO"] == "/2"
    assert "HTTP_X_FIRST" not in second and "mutated.by.the.app" not in second
    assert second["CONTENT_TYPE"] == "" and second["CONTENT_LENGTH"] == ""
    assert second["REMOTE_ADDR"] == "10.0.0.1"


def test_each_environ_is_fresh_though_the_connection_keys_are_worked_out_once():
    """The gateway works out a connection's addresses once, but each request's environ
    is what a fresh connection would get, whatever the application did to the one
    before (this fails if the connection's base is handed out instead of copied)."""
    seen: list[dict] = []

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(dict(environ))
        environ["REMOTE_ADDR"] = "changed"
        environ["mutated.by.the.app"] = True
        del environ["SERVER_NAME"]
        environ["wsgi.url_scheme"] = "gopher"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    gateway = WSGIGateway(app)
    connection_data: dict = {}
    raws = [b"GET /1?a HTTP/1.1\r\nHost: x\r\nX-First: 1\r\n\r\n",
            b"GET /2 HTTP/1.1\r\nHost: y:81\r\n\r\n",
            b"HEAD /3 HTTP/1.1\r\nHost: z\r\nAccept: */*\r\n\r\n"]
    for raw in raws:
        connection = FakeResponder()
        gateway(parsed_request(raw, connection_data=connection_data), connection)
        assert connection.code == 200 and connection.body == b"ok"
    assert seen == [gateway.build_environ(parsed_request(raw)) for raw in raws]
    assert all(environ["REMOTE_ADDR"] == "10.0.0.1" and "mutated.by.the.app" not in environ
               for environ in seen)


# -- calling the application -----------------------------------------------------------------


def hello(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_a_list_response():
    responder = call(hello)
    assert responder.done and not responder.aborted
    assert responder.code == 200 and responder.body == b"hello"
    assert responder.header("Content-Type") == "text/plain"
    assert responder.header("Content-Length") == "5"


def test_the_app_gets_the_environ_of_the_request():
    seen: list[dict] = []

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(environ)
        return hello(environ, start_response)

    call(app, b"PUT /p?q HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    [environ] = seen
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == ("PUT", "/p")
    assert environ["wsgi.input"].read() == b"hi"


def test_options_star_is_answered_without_the_app():
    responder = call(not_called, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert responder.code == 200 and responder.done
    assert "GET" in responder.header("Allow")


def test_a_streamed_response_is_iterated_and_closed():
    body = Body([b"one ", b"", b"two"])
    responder = call(streaming(body))
    assert responder.code == 200 and responder.body == b"one two" and responder.done
    assert body.closed == 1


def test_start_response_may_be_called_inside_the_iterable():
    def app(environ: dict, start_response: Callable[..., Any]) -> Iterator[bytes]:
        yield b""
        start_response("201 Created", [("Content-Type", "text/plain")])
        yield b"made"

    responder = call(app)
    assert responder.code == 201 and responder.body == b"made"


def test_start_response_twice_without_exc_info_is_an_error(caplog):
    raised: list[BaseException] = []

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        try:
            start_response("404 Not Found", [])
        except AssertionError as exc:
            raised.append(exc)
            raise
        return [b"never"]

    responder = call(app)
    assert len(raised) == 1
    assert responder.code == 500 and b"never" not in responder.body


def test_start_response_with_exc_info_before_the_head_replaces_the_status():
    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("the page failed")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"sorry"]

    responder = call(app)
    assert responder.code == 503 and responder.body == b"sorry"
    assert responder.header("X-First") is None


def test_start_response_with_exc_info_after_the_head_raises_it_again(caplog):
    raised: list[BaseException] = []
    error = ValueError("late failure")

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")  # the head has gone out
        try:
            raise error
        except ValueError:
            try:
                start_response("500 Internal Server Error", [], sys.exc_info())
            except ValueError as again:
                raised.append(again)
                raise
        return [b"never"]

    responder = call(app)
    assert raised == [error]
    assert responder.code == 200 and responder.body == b"partial"
    assert responder.aborted  # the head is out: the connection is cut, no 500


def test_headers_must_be_a_list(caplog):
    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", (("Content-Type", "text/plain"),))
        return [b"x"]

    assert call(app).code == 500


@pytest.mark.parametrize("status, headers", [
    ("200 OK", [("Bad Name", "x")]),
    ("200 OK", [("X-Split", "a\r\nInjected: yes")]),
    ("200 OK", [("X-Text", "not latin-1: \u20ac")]),
    ("200", []),
    ("OK", []),
])
def test_an_invalid_status_or_header_gives_500(caplog, status, headers):
    body = Body([b"x"])
    responder = call(streaming(body, status, headers))
    assert responder.code == 500
    assert responder.body == b"500 Internal Server Error\n"
    assert responder.header("X-Split") is None and responder.header("Injected") is None
    assert body.closed == 1


def test_the_write_callable():
    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        write(b"b")
        return [b"c"]

    responder = call(app)
    assert responder.code == 200 and responder.body == b"abc" and responder.done


def test_the_write_callable_then_an_iterable():
    body = Body([b"c", b"d"])

    def app(environ: dict, start_response: Callable[..., Any]) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])(b"ab")
        return body

    responder = call(app)
    assert responder.body == b"abcd" and responder.done and body.closed == 1


def test_the_write_callable_takes_only_bytes(caplog):
    raised: list[BaseException] = []

    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [])
        try:
            write("text")
        except TypeError as exc:
            raised.append(exc)
            raise
        return []

    responder = call(app)
    assert len(raised) == 1 and responder.code == 500


@pytest.mark.parametrize("result", [[b"data"], iter([b"data"])])
def test_data_before_start_response_gives_500(caplog, result):
    responder = call(lambda environ, start_response: result)
    assert responder.code == 500


def test_a_chunk_that_is_not_bytes_gives_500_and_close(caplog):
    body = Body(["text"])
    assert call(streaming(body)).code == 500
    assert body.closed == 1


def test_an_app_error_gives_500_without_traceback(caplog):
    def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), ("X-Secret", "s")])
        raise RuntimeError("secret detail 12345")

    with caplog.at_level(logging.ERROR, logger="wsgiloop.error"):
        responder = call(app, b"GET /boom?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert responder.code == 500 and responder.done and not responder.aborted
    assert responder.body == b"500 Internal Server Error\n"
    assert responder.header("Content-Type") == "text/plain; charset=utf-8"
    assert responder.header("X-Secret") is None
    [record] = [r for r in caplog.records if r.name == "wsgiloop.error"]
    assert record.getMessage() == "error handling GET /boom?x=1"
    assert record.exc_info is not None and "secret detail 12345" in caplog.text
    assert "Traceback" in caplog.text  # the traceback is in the log, not in the body


def test_close_is_called_when_the_iterable_fails_before_the_head(caplog):
    body = Body([b"never"], fail_at=0)
    responder = call(streaming(body))
    assert responder.code == 500 and responder.body == b"500 Internal Server Error\n"
    assert body.closed == 1


def test_close_is_called_when_the_iterable_fails_after_the_head(caplog):
    body = Body([b"first", b"never"], fail_at=1)
    responder = call(streaming(body))
    assert responder.code == 200 and responder.body == b"first"
    assert responder.aborted  # the client sees the response cut
    assert body.closed == 1
    assert "error in the application after the response started" in caplog.text


def test_close_is_called_when_the_client_goes_away_mid_response():
    body = Body([b"1", b"2", b"3"])
    responder = call(streaming(body), responder=FakeResponder(writable=False))
    assert responder.body == b"1" and body.yielded == 1  # waiting for the client
    assert body.closed == 0
    responder.disconnect()
    assert body.closed == 1
    responder.drain()  # a late drain must not resume the iteration
    assert body.yielded == 1 and body.closed == 1


def test_close_is_called_when_the_client_has_gone_before_the_body():
    body = Body([b"1", b"2"])
    responder = FakeResponder()
    responder.client_gone = True
    call(streaming(body), responder=responder)
    assert body.closed == 1 and body.yielded == 1 and responder.body == b""


def test_close_is_called_for_head():
    body = Body([b"not sent"])
    responder = call(streaming(body), b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert responder.code == 200 and responder.done and body.closed == 1
    assert responder.framer is not None and responder.framer.encode(b"x") == b""


def test_an_error_in_close_is_logged(caplog):
    class BadClose(Body):
        def close(self) -> None:
            super().close()
            raise OSError("close failed")

    body = BadClose([b"ok"])
    responder = call(streaming(body))
    assert responder.body == b"ok" and responder.done and body.closed == 1
    assert "error in the close() of the application's iterable" in caplog.text


def test_iteration_waits_while_the_client_is_slow():
    body = Body([b"1", b"2", b"3"])
    responder = call(streaming(body), responder=FakeResponder(writable=False))
    assert (responder.body, responder.done) == (b"1", False)
    responder.drain()
    assert (responder.body, responder.done) == (b"12", False)
    responder.drain()
    responder.drain()
    assert (responder.body, responder.done) == (b"123", True)
    assert body.closed == 1


def test_file_wrapper_over_a_real_file_is_sent_with_write_file(tmp_path: Path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    opened: list[Any] = []

    def app(environ: dict, start_response: Callable[..., Any]) -> Any:
        f = open(path, "rb")  # the gateway closes it
        opened.append((f, f.fileno()))
        f.seek(4)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", "6")])
        return environ["wsgi.file_wrapper"](f)

    responder = call(app)
    [(f, fd)] = opened
    assert responder.files == [(fd, 4, 6)]  # sendfile from where the file stood
    assert responder.body == b"456789" and responder.done
    assert f.closed


def test_file_wrapper_without_a_length_is_iterated(tmp_path: Path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)

    def app(environ: dict, start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 30)

    responder = call(app)
    assert responder.files == []  # chunked: the bytes must be framed
    assert responder.body == b"x" * 100 and responder.done
