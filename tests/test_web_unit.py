"""In-process tests of the native handler mode (``wsgiloop.web``).

Most go through ``webtest.TestApp(application)`` -- the Application's WSGI calling
convention.  What WSGI cannot express (raw request targets, a client that disconnects, a
full write buffer, ``OPTIONS *``) goes through the delegate convention with a fake
responder, on a private loop.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pytest
import webtest
from responders import FakeResponder, parsed_request

from wsgiloop import aio
from wsgiloop.http.hosts import host_name
from wsgiloop.ioloop import CancelledError
from wsgiloop.web import (
    Application,
    ClientDisconnected,
    HTTPError,
    RequestHandler,
    StaticFileHandler,
    mount,
    signing,
    url,
)
from wsgiloop.web.httputil import (
    FormError,
    Headers,
    format_set_cookie,
    parse_cookie_header,
    parse_header_params,
    parse_multipart,
    parse_query,
)
from wsgiloop.web.inprocess import private_loop
from wsgiloop.web.routing import Router, Rule, literal_prefix
from wsgiloop.web.static import UNSATISFIABLE, parse_range, resolve_static_path

# -- helpers -----------------------------------------------------------------------------------


def native(app: Application, raw: bytes, responder: FakeResponder | None = None
           ) -> FakeResponder:
    """Parse ``raw`` with the real parser and hand it to ``app`` as the server would."""
    request = parsed_request(raw)
    responder = responder or FakeResponder(request.head.method)
    app(request, responder)
    return responder


def run_loop_until(predicate: Any, timeout: float = 5.0) -> None:
    loop = private_loop()
    deadline = time.monotonic() + timeout

    def check() -> None:
        if predicate() or time.monotonic() > deadline:
            loop.stop()
        else:
            loop.call_later(0.002, check)

    loop.call_soon(check)
    loop.run_forever()
    assert predicate(), "timed out"


# -- handlers used below -----------------------------------------------------------------------


class Echo(RequestHandler):
    def get(self, *args: str, **kwargs: str) -> None:
        self.write({"args": list(args), "kwargs": kwargs})


class Args(RequestHandler):
    def get(self) -> None:
        self.write({"a": self.get_argument("a"), "all": self.get_arguments("a"),
                    "q": self.get_query_argument("a", None),
                    "missing": self.get_argument("zzz", "dflt"),
                    "raw": self.get_argument("s", "", strip=False)})

    def post(self) -> None:
        self.write({"body": self.get_body_argument("f", None),
                    "query": self.get_query_argument("q", None),
                    "merged": self.get_arguments("f"),
                    "files": {k: [[f["filename"], f["content_type"], f["body"].decode()]
                                   for f in v] for k, v in self.request.files.items()}})


class Required(RequestHandler):
    def get(self) -> None:
        self.write(self.get_argument("needed"))


class JsonIn(RequestHandler):
    def post(self) -> None:
        self.write({"got": self.json, "same": self.get_json() is self.json})


class AsyncJson(RequestHandler):
    async def prepare(self) -> None:
        await aio.sleep(0)
        self.prepared = True

    async def get(self) -> None:
        await aio.sleep(0.001)
        self.write({"prepared": self.prepared})


class Boom(RequestHandler):
    def get(self) -> None:
        raise ValueError("the secret detail")


class Teapot(RequestHandler):
    def get(self) -> None:
        raise HTTPError(418, "for the log %s", "only", reason="Short And Stout")


class CustomError(RequestHandler):
    def get(self) -> None:
        raise HTTPError(409)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish(f"custom {status_code}")


class FlushThenFail(RequestHandler):
    def get(self) -> None:
        self.write("partial")
        self.flush()
        raise RuntimeError("after the head")


class Cookies(RequestHandler):
    def get(self) -> None:
        self.write({"cookies": self.request.cookies,
                    "signed": (self.get_signed_cookie("s") or b"").decode()})

    def post(self) -> None:
        self.set_cookie("a", "1", domain="example.com", max_age=60, secure=True,
                        httponly=True, samesite="strict")
        self.set_signed_cookie("s", "secret-value")
        self.clear_cookie("old")


class Redirector(RequestHandler):
    def get(self) -> None:
        self.redirect("target?x=1", permanent=True)


class StatusHandler(RequestHandler):
    def get(self) -> None:
        self.set_status(201)
        self.add_header("X-Multi", "1")
        self.add_header("X-Multi", "2")
        self.set_header("X-Gone", "x")
        self.clear_header("X-Gone")
        self.write("made")


class NoContent(RequestHandler):
    def delete(self) -> None:
        self.set_status(204)


class Streamer(RequestHandler):
    async def get(self) -> None:
        for i in range(3):
            self.write(f"part{i};")
            await self.flush()


class Waiter(RequestHandler):
    """Waits for EVENT; records its lifecycle in LOG."""

    EVENT: aio.Event | None = None
    LOG: list[str] = []

    async def get(self) -> None:
        try:
            await type(self).EVENT.wait()  # type: ignore[union-attr]
        except CancelledError:
            type(self).LOG.append("cancelled")
            raise
        type(self).LOG.append("woke")
        self.write("done")

    def on_connection_close(self) -> None:
        type(self).LOG.append(f"closed={self.closed}")

    def on_finish(self) -> None:
        type(self).LOG.append("finish")


class CancellingWaiter(Waiter):
    cancel_on_disconnect = True


class PushBack(RequestHandler):
    async def get(self) -> None:
        self.write("a" * 10)
        first = self.flush()
        type(self).FIRST = first
        await first
        self.write("b")

    FIRST: Any = None


def wsgi_app(environ: dict, start_response: Any) -> list[bytes]:
    body = f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def make_app(**settings: Any) -> Application:
    settings.setdefault("cookie_secret", "sekrit")
    return Application([
        (r"/echo/([0-9]+)/([a-z]+)", Echo),
        url(r"/named/(?P<year>[0-9]{4})/(?P<slug>[^/]+)", Echo, name="named"),
        (r"/mixed/([a-z]+)/(?P<n>[0-9]+)", Echo, {}, "mixed"),
        (r"/user/([^/]+)/profile", Echo, "profile"),
        (r"/args", Args),
        (r"/required", Required),
        (r"/json", JsonIn),
        (r"/async", AsyncJson),
        (r"/boom", Boom),
        (r"/teapot", Teapot),
        (r"/custom", CustomError),
        (r"/flushfail", FlushThenFail),
        (r"/cookies", Cookies),
        (r"/redirect/from", Redirector),
        (r"/status", StatusHandler),
        (r"/nocontent", NoContent),
        (r"/stream", Streamer),
        (r"/wait", Waiter),
        (r"/wait-cancel", CancellingWaiter),
        (r"/pushback", PushBack),
        (r"/legacy", wsgi_app),
        mount("/other-app", wsgi_app, name="other"),
    ], **settings)


@pytest.fixture
def app() -> webtest.TestApp:
    return webtest.TestApp(make_app())


# -- routing -----------------------------------------------------------------------------------


def test_positional_groups_are_positional_args(app):
    assert app.get("/echo/42/abc").json == {"args": ["42", "abc"], "kwargs": {}}


def test_named_groups_are_keyword_args(app):
    assert app.get("/named/2024/hello").json == {
        "args": [], "kwargs": {"year": "2024", "slug": "hello"}}
    assert app.get("/mixed/abc/7").json == {"args": ["abc"], "kwargs": {"n": "7"}}


def test_patterns_match_the_whole_decoded_path(app):
    app.get("/echo/42/abc/extra", status=404)
    app.get("/xx/echo/42/abc", status=404)
    # Percent-decoded before matching: %61 is "a".
    assert app.get("/echo/42/%61bc").json["args"] == ["42", "abc"]
    assert app.get("/user/J%C3%BCrgen/profile").json["args"] == ["Jürgen"]


def test_reverse_url():
    application = make_app()
    assert application.reverse_url("named", "2024", "a b") == "/named/2024/a%20b"
    assert application.reverse_url("named", year=1999, slug="x") == "/named/1999/x"
    assert application.reverse_url("mixed", "abc", 5) == "/mixed/abc/5"
    assert application.reverse_url("profile", "a/b?c") == "/user/a/b%3Fc/profile"
    assert application.reverse_url("other") == "/other-app"
    with pytest.raises(KeyError):
        application.reverse_url("nope")
    with pytest.raises(ValueError):
        application.reverse_url("named", "only-one")


def test_unreversible_patterns_raise():
    router = Router()
    router.add(".*", [url(r"/a|/b", Echo, name="alt"), url(r"/opt/(\d+)?", Echo, name="opt"),
                      url(r"/class/[a-z]+", Echo, name="cls")])
    for name in ("alt", "opt", "cls"):
        with pytest.raises(ValueError):
            router.reverse(name)


def test_a_mount_needs_a_literal_prefix():
    assert literal_prefix(r"^/legacy/?(.*)$") == "/legacy"
    assert literal_prefix(r"/old\-app/") == "/old-app"
    with pytest.raises(ValueError):
        literal_prefix(r"/v[0-9]+")
    with pytest.raises(ValueError):
        Application([(r"/(a|b)", wsgi_app)])


def test_bad_rules_are_refused():
    with pytest.raises(TypeError):
        Application([(r"/x", 42)])
    with pytest.raises(TypeError):
        Application([(r"/x",)])
    with pytest.raises(ValueError):
        Application([url(r"/a", Echo, name="n"), url(r"/b", Echo, name="n")])


def test_404_for_unrouted_paths(app):
    response = app.get("/no/such/path", status=404)
    assert "404: Not Found" in response.text
    assert response.content_type == "text/html"


def test_405_lists_the_allowed_methods(app):
    response = app.post("/echo/1/a", status=405)
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    response = app.put("/args", status=405)
    assert response.headers["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_405_for_methods_outside_supported_methods():
    response = native(make_app(), b"PROPFIND /echo/1/a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.code == 405
    assert response.header("Allow") == "GET, HEAD, OPTIONS"


def test_head_runs_get_without_a_body(app):
    response = app.head("/echo/1/a")
    assert response.body == b""
    assert int(response.headers["Content-Length"]) == len(b'{"args": ["1", "a"], "kwargs": {}}')


def test_options_is_answered_with_allow(app):
    response = app.options("/args", status=204)
    assert response.headers["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_options_star():
    response = native(make_app(), b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.code == 200
    assert "GET" in response.header("Allow")


def test_undecodable_path_is_400():
    assert native(make_app(), b"GET /echo/%ff HTTP/1.1\r\nHost: x\r\n\r\n").code == 400


def test_host_rules_come_first():
    application = make_app()

    class ApiEcho(RequestHandler):
        def get(self, *args: str) -> None:
            self.write("api")

    application.add_handlers(r"api\.example\.com", [(r"/echo/([0-9]+)/([a-z]+)", ApiEcho)])
    client = webtest.TestApp(application)
    assert client.get("/echo/1/a", headers={"Host": "api.example.com:8080"}).text == "api"
    assert client.get("/echo/1/a", headers={"Host": "API.example.com"}).text == "api"
    assert client.get("/echo/1/a", headers={"Host": "www.example.com"}).json["args"] == \
        ["1", "a"]
    # A path only the default group has still works on the API host.
    assert client.get("/args?a=1", headers={"Host": "api.example.com"}).json["a"] == "1"


def test_the_first_matching_rule_wins_literal_or_not():
    class Named(RequestHandler):
        def initialize(self, name: str) -> None:
            self.name = name

        def get(self, *args: str) -> None:
            self.write({"name": self.name, "args": list(args)})

    application = Application([
        (r"/a/(.*)", Named, {"name": "pattern"}),
        (r"/a/x", Named, {"name": "literal shadowed"}),
        (r"/b", Named, {"name": "first literal"}),
        (r"/b", Named, {"name": "second literal"}),
        (r"/(b|c)", Named, {"name": "after literals"}),
        mount("/m", wsgi_app),
        (r"/m/inner", Named, {"name": "under a mount"}),
    ])
    client = webtest.TestApp(application)
    assert client.get("/a/x").json == {"name": "pattern", "args": ["x"]}
    assert client.get("/b").json == {"name": "first literal", "args": []}
    assert client.get("/c").json == {"name": "after literals", "args": ["c"]}
    assert client.get("/m/inner").text == "/m|/inner"
    # Rules added later (for one host) are indexed too, and come first on that host.
    application.add_handlers(r"api\.example\.com", [(r"/b", Named, {"name": "api"})])
    assert client.get("/b", headers={"Host": "api.example.com"}).json["name"] == "api"
    assert client.get("/b").json["name"] == "first literal"
    # Arguments handed to a handler are its own: changing them changes no later request.
    first = application.resolve("x", "/b")
    first[1].append("junk")
    assert application.resolve("x", "/b")[1] == []


def test_serve_and_resolve_replaced_after_the_application_was_made_are_used():
    """A subclass patched later (a decorator, a test's monkeypatch) is honoured on the
    next request: nothing decides at construction which methods are the class's own."""
    class Hello(RequestHandler):
        def get(self) -> None:
            self.write("hello")

    class Other(RequestHandler):
        def get(self) -> None:
            self.write("other")

    class Patched(Application):
        pass

    application = Patched([(r"/", Hello)])
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert native(application, request).body == b"hello"

    served = []

    def serve(self: Application, request: Any, responder: Any) -> None:
        served.append(request.head.path)
        Application.serve(self, request, responder)

    Patched.serve = serve  # type: ignore[method-assign]
    assert native(application, request).body == b"hello"
    assert served == ["/"]

    Patched.resolve = lambda self, host, path: (Rule("/", Other), [], {})  # type: ignore[method-assign]
    assert native(application, request).body == b"other"
    assert webtest.TestApp(application).get("/").text == "other"


def test_default_handler_class():
    class NotHere(RequestHandler):
        def get(self) -> None:
            self.set_status(410)
            self.write("gone")

    client = webtest.TestApp(Application([], default_handler_class=NotHere))
    assert client.get("/anything", status=410).text == "gone"


def test_wsgi_fallback_gets_everything_unrouted():
    client = webtest.TestApp(Application([(r"/native", Echo)], wsgi_fallback=wsgi_app))
    assert client.get("/some/where").text == "|/some/where"
    assert client.get("/native").json == {"args": [], "kwargs": {}}


def test_wsgi_mount_sets_script_name(app):
    assert app.get("/legacy").text == "/legacy|"
    assert app.get("/legacy/").text == "/legacy|/"
    assert app.get("/legacy/a/b").text == "/legacy|/a/b"
    assert app.get("/other-app/x").text == "/other-app|/x"
    app.get("/legacyx", status=404)


def test_wsgi_mount_natively_goes_through_the_gateway():
    response = native(make_app(), b"GET /legacy/a%20b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.code == 200
    assert response.body == b"/legacy|/a b"


def test_calling_convention_is_detected():
    application = make_app()
    response = native(application, b"GET /echo/1/a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.code == 200 and response.done  # delegate: (request, responder)
    assert webtest.TestApp(application).get("/echo/1/a").status_int == 200  # WSGI


# -- request side ------------------------------------------------------------------------------


def test_query_arguments(app):
    data = app.get("/args?a=1&a=%20two%20&s=%20x%20").json
    assert data == {"a": "two", "all": ["1", "two"], "q": "two", "missing": "dflt",
                    "raw": " x "}


def test_missing_argument_is_400(app):
    response = app.get("/required", status=400)
    assert "Missing argument needed" in response.text


def test_undecodable_query_is_400(app):
    app.get("/args?a=%ff", status=400)


def test_urlencoded_body(app):
    data = app.post("/args?q=query", {"f": "form é"}).json
    assert data["body"] == "form é"
    assert data["query"] == "query"
    assert data["merged"] == ["form é"]


def test_multipart_body_with_files(app):
    response = app.post("/args", {"f": "field"}, upload_files=[
        ("doc", "a.txt", b"file one", "text/plain"),
        ("doc", "b.bin", b"\x00\x01", "application/octet-stream")])
    data = response.json
    assert data["body"] == "field"
    assert data["files"]["doc"][0] == ["a.txt", "text/plain", "file one"]
    assert data["files"]["doc"][1][0] == "b.bin"


def test_malformed_multipart_is_400(app):
    app.post("/args", b"--xx\r\nno end", content_type="multipart/form-data; boundary=xx",
             status=400)


def test_json_body(app):
    assert app.post_json("/json", {"a": [1, 2]}).json == {"got": {"a": [1, 2]}, "same": True}
    app.post("/json", b"{not json", content_type="application/json", status=400)
    app.post("/json", b"", content_type="application/json", status=400)


def test_request_attributes():
    seen: dict[str, Any] = {}

    class Inspect(RequestHandler):
        def get(self, rest: str) -> None:
            r = self.request
            seen.update(method=r.method, uri=r.uri, path=r.path, query=r.query,
                        decoded=r.decoded_path, ip=r.remote_ip, host=r.host_name,
                        ua=r.headers["user-agent"], version=r.version, url=r.full_url())

    native(Application([(r"/in/(.*)", Inspect)]),
           b"GET /in/a%20b?x=1 HTTP/1.1\r\nHost: Example.com:81\r\nUser-Agent: t\r\n\r\n")
    assert seen == {"method": "GET", "uri": "/in/a%20b?x=1", "path": "/in/a%20b",
                    "query": "x=1", "decoded": "/in/a b", "ip": "10.0.0.1",
                    "host": "example.com", "ua": "t", "version": "HTTP/1.1",
                    "url": "http://Example.com:81/in/a%20b?x=1"}


def test_host_name_drops_the_port_and_keeps_ipv6_brackets():
    assert host_name("Example.com:8080") == "Example.com"
    assert host_name("example.com") == "example.com"
    assert host_name("[::1]:80") == "[::1]"
    assert host_name("[::1]") == "[::1]"
    assert host_name("") == ""


def test_parse_query_and_header_params():
    assert parse_query("a=1&a=2&b=&c") == {"a": ["1", "2"], "b": [""], "c": [""]}
    with pytest.raises(FormError):
        parse_query("a=%ff")
    kind, params = parse_header_params(
        'form-data; name="f\\"x"; filename=plain.txt; filename*=UTF-8\'\'%C3%A9t%C3%A9.txt')
    assert kind == "form-data"
    assert params == {"name": 'f"x', "filename": "été.txt"}


def test_multipart_parser():
    body = (b"preamble\r\n--BB\r\n"
            b'Content-Disposition: form-data; name="a"\r\n\r\n'
            b"one\r\n--BBnot-a-boundary\r\n"
            b"--BB  \r\n"
            b'Content-Disposition: form-data; name="f"; filename="x.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n"
            b"line1\r\nline2\r\n"
            b"--BB\r\n"
            b'Content-Disposition: attachment; name="ignored"\r\n\r\nzzz\r\n'
            b"--BB--\r\nepilogue")
    fields, files = parse_multipart(body, "BB")
    assert fields == {"a": ["one\r\n--BBnot-a-boundary"]}
    assert files["f"][0].body == b"line1\r\nline2"
    assert files["f"][0]["filename"] == "x.txt"
    assert files["f"][0].content_type == "text/plain"


@pytest.mark.parametrize("body", [
    b"no boundary at all",
    b"--BB\r\nContent-Disposition: form-data; name=a\r\n\r\nnever closed",
    b"--BB\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--BBx--",
    b"--BB\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\r\n--BB--",
    b"--BB\r\nbroken header line\r\n\r\nx\r\n--BB--",
])
def test_multipart_parser_rejects(body):
    with pytest.raises(FormError):
        parse_multipart(body, "BB")


def test_multipart_part_limit(monkeypatch):
    from wsgiloop.web import httputil
    monkeypatch.setattr(httputil, "MAX_MULTIPART_PARTS", 3)
    part = b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n'
    parse_multipart(part * 3 + b"--B--", "B")
    with pytest.raises(FormError):
        parse_multipart(part * 4 + b"--B--", "B")


def test_headers_mapping():
    headers = Headers([("Content-Type", "a"), ("X-A", "1"), ("x-a", "2")])
    assert headers["content-type"] == "a"
    assert headers["X-A"] == "1, 2"
    assert headers.get_list("X-a") == ["1", "2"]
    assert "CONTENT-TYPE" in headers and "nope" not in headers
    headers["x-a"] = "3"
    assert list(headers.get_all()) == [("Content-Type", "a"), ("x-a", "3")]
    with pytest.raises(ValueError):
        headers["X-Bad"] = "a\r\nInjected: 1"


# -- response side -----------------------------------------------------------------------------


def test_status_and_headers(app):
    response = app.get("/status", status=201)
    assert response.headers.getall("X-Multi") == ["1", "2"]
    assert "X-Gone" not in response.headers
    assert response.text == "made"


def test_repeated_response_fields():
    """add_header keeps every value (the same value twice too), in order; get joins them;
    set_header and clear_header drop them all; the name is sent as first given."""
    seen: dict[str, Any] = {}

    class Fields(RequestHandler):
        def get(self) -> None:
            same = "v"
            self.add_header("X-Twice", same)
            self.add_header("x-twice", same)
            self.add_header("X-Replaced", "1")
            self.add_header("X-Replaced", "2")
            self.set_header("X-Replaced", "3")
            self.add_header("X-Cleared", "1")
            self.add_header("X-Cleared", "2")
            self.clear_header("x-cleared")
            self.add_header("X-Cleared", "again")
            self.add_header("Set-Cookie", "a=1")
            self.add_header("Set-Cookie", "b=2")
            self.add_header("Set-Cookie", "c=3")
            seen["twice"] = self.get_response_header("x-TWICE")
            seen["missing"] = self.get_response_header("X-None", "dflt")

    response = native(Application([(r"/", Fields)]), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert seen == {"twice": "v, v", "missing": "dflt"}
    pairs = [(name, value) for name, value in response.headers if name.startswith(("X-", "Set"))]
    assert [p for p in pairs if p[0] == "X-Twice"] == [("X-Twice", "v"), ("X-Twice", "v")]
    assert [p for p in pairs if p[0].lower() == "x-replaced"] == [("X-Replaced", "3")]
    assert [p for p in pairs if p[0].lower() == "x-cleared"] == [("X-Cleared", "again")]
    assert [v for n, v in pairs if n == "Set-Cookie"] == ["a=1", "b=2", "c=3"]


def test_usual_field_names_replace_their_other_spellings():
    """Any spelling of a field name replaces the field, and a handler's own ETag (Tornado
    spells it "Etag") keeps finish from computing one."""
    class Usual(RequestHandler):
        def get(self) -> None:
            for name in ("Content-Type", "Cache-Control", "Location"):
                self.add_header(name.upper(), "first")
                self.add_header(name.lower(), "second")
                self.set_header(name, "last")
            self.set_header("ETAG", '"mine"')
            self.set_header("Etag", '"tornado"')
            self.write("body")

    response = native(Application([(r"/", Usual)]), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    fields = [(name, value) for name, value in response.headers if name != "Date"]
    for name in ("Content-Type", "Cache-Control", "Location"):
        assert [pair for pair in fields if pair[0].lower() == name.lower()] == [(name, "last")]
    assert [pair for pair in fields if pair[0].lower() == "etag"] == [("Etag", '"tornado"')]
    assert response.body == b"body"


def test_204_has_no_body_or_entity_headers(app):
    response = app.delete("/nocontent", status=204)
    assert response.body == b""
    assert "Content-Type" not in response.headers
    assert "Content-Length" not in response.headers


def test_redirect(app):
    response = app.get("/redirect/from", status=301)
    assert response.headers["Location"] == "/redirect/target?x=1"


def test_write_dict_is_json(app):
    response = app.get("/echo/1/a")
    assert response.content_type == "application/json"


def test_write_rejects_lists_and_after_finish():
    class Bad(RequestHandler):
        def get(self) -> None:
            try:
                self.write([1, 2])  # type: ignore[arg-type]
            except TypeError as exc:
                note = str(exc)
            self.finish(note)
            with pytest.raises(RuntimeError):
                self.write("late")

    assert "wrap a list" in webtest.TestApp(Application([(r"/", Bad)])).get("/").text


def test_etag_and_if_none_match(app):
    response = app.get("/echo/1/a")
    etag = response.headers["ETag"]
    again = app.get("/echo/1/a", headers={"If-None-Match": etag}, status=304)
    assert again.body == b""
    assert again.headers["ETag"] == etag
    app.get("/echo/1/a", headers={"If-None-Match": '"other"'}, status=200)
    app.get("/echo/1/a", headers={"If-None-Match": f'"x", W/{etag}'}, status=304)
    # The field repeated counts as one list; any case of the name.
    two_fields = (f'GET /echo/1/a HTTP/1.1\r\nHost: x\r\nIf-None-Match: "x"\r\n'
                  f'if-none-match: {etag}\r\n\r\n').encode()
    assert native(make_app(), two_fields).code == 304


def test_streaming_flush_natively():
    response = native(make_app(), b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    run_loop_until(lambda: response.done)
    assert response.body == b"part0;part1;part2;"
    assert response.header("Content-Length") is None  # the server frames it (chunked)


def test_flush_waits_for_the_client_to_drain():
    responder = FakeResponder("GET", writable=False)
    native(make_app(), b"GET /pushback HTTP/1.1\r\nHost: x\r\n\r\n", responder)
    run_loop_until(lambda: PushBack.FIRST is not None and responder.writable_callbacks)
    loop = private_loop()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert not PushBack.FIRST.done() and not responder.done  # held back
    responder.drain()
    run_loop_until(lambda: responder.done)
    assert responder.body == b"a" * 10 + b"b"


# -- cookies -----------------------------------------------------------------------------------


def test_set_and_read_cookies(app):
    response = app.post("/cookies")
    cookies = response.headers.getall("Set-Cookie")
    first = cookies[0]
    assert first.startswith("a=1; Domain=example.com; Path=/; Max-Age=60; Secure; HttpOnly")
    assert first.endswith("SameSite=Strict")
    assert any(c.startswith("s=2|") and "Expires=" in c for c in cookies)
    cleared = [c for c in cookies if c.startswith("old=")][0]
    assert "Max-Age=0" in cleared and "Expires=Thu, 01 Jan 1970" in cleared
    data = app.get("/cookies").json
    assert data["signed"] == "secret-value"
    assert data["cookies"]["s"].startswith("2|")  # "a" is for example.com, over https


def test_tampered_signed_cookie_is_refused(app):
    signed = signing.create_signed_value("sekrit", "s", "value")
    forged = signed.replace("|dmFsdWU|", "|ZXZpbA|")  # "evil"
    data = app.get("/cookies", headers={"Cookie": f"s={forged}"}).json
    assert data["signed"] == ""
    data = app.get("/cookies", headers={"Cookie": f"s={signed}"}).json
    assert data["signed"] == "value"


def test_signed_values():
    now = [1_700_000_000.0]

    def clock() -> float:
        return now[0]

    signed = signing.create_signed_value("k", "name", "v|alue", clock=clock)
    assert signing.decode_signed_value("k", "name", signed, clock=clock) == b"v|alue"
    assert signing.decode_signed_value("other-key", "name", signed, clock=clock) is None
    assert signing.decode_signed_value("k", "other-name", signed, clock=clock) is None
    assert signing.decode_signed_value("k", "name", signed + "0", clock=clock) is None
    assert signing.decode_signed_value("k", "name", "garbage", clock=clock) is None
    assert signing.decode_signed_value("k", "name", "é|1", clock=clock) is None
    assert signing.decode_signed_value("k", "name", None, clock=clock) is None
    now[0] += 32 * 86400  # too old
    assert signing.decode_signed_value("k", "name", signed, clock=clock) is None
    assert signing.decode_signed_value("k", "name", signed, max_age_days=40,
                                       clock=clock) == b"v|alue"
    now[0] -= 33 * 86400  # from the future
    assert signing.decode_signed_value("k", "name", signed, clock=clock) is None
    with pytest.raises(ValueError):
        signing.create_signed_value("", "name", "v")


def test_signed_cookies_need_a_secret(caplog):
    client = webtest.TestApp(Application([(r"/cookies", Cookies)]))
    with caplog.at_level(logging.ERROR, logger="wsgiloop.error"):
        client.post("/cookies", status=500)
    assert "cookie_secret" in caplog.text


def test_cookie_header_parsing_is_lenient():
    assert parse_cookie_header(['a=1; b="two"; bad; =x; c=3=3', "a=ignored; d=4"]) == {
        "a": "1", "b": "two", "c": "3=3", "d": "4"}


@pytest.mark.parametrize("name,value,kwargs", [
    ("bad name", "v", {}), ("n", "semi;colon", {}), ("n", "sp ace", {}),
    ("n", "v", {"path": "/x;Secure"}), ("n", "v", {"samesite": "sometimes"}),
])
def test_unsafe_cookies_are_refused(name, value, kwargs):
    with pytest.raises(ValueError):
        format_set_cookie(name, value, **kwargs)


# -- errors ------------------------------------------------------------------------------------


def test_500_page_has_no_traceback_and_the_log_has_it(app, caplog):
    with caplog.at_level(logging.ERROR, logger="wsgiloop.error"):
        response = app.get("/boom", status=500)
    assert "500: Internal Server Error" in response.text
    assert "secret detail" not in response.text and "Traceback" not in response.text
    record = [r for r in caplog.records if r.name == "wsgiloop.error"][-1]
    assert record.exc_info is not None and "the secret detail" in caplog.text
    assert "GET /boom" in record.getMessage()


def test_debug_500_page_shows_the_traceback():
    response = webtest.TestApp(make_app(debug=True)).get("/boom", status=500)
    assert "Traceback" in response.text
    assert "ValueError: the secret detail" in response.text


def test_async_errors_become_500():
    class AsyncBoom(RequestHandler):
        async def get(self) -> None:
            await aio.sleep(0)
            raise KeyError("k")

    webtest.TestApp(Application([(r"/", AsyncBoom)])).get("/", status=500)


def test_http_error_status_reason_and_log(app, caplog):
    with caplog.at_level(logging.WARNING, logger="wsgiloop.error"):
        response = app.get("/teapot", status=418)
    assert response.status == "418 Short And Stout"
    assert "for the log only" in caplog.text
    assert "for the log" not in response.text


def test_custom_write_error(app):
    assert app.get("/custom", status=409).text == "custom 409"


def test_error_after_the_head_cuts_the_connection():
    response = native(make_app(), b"GET /flushfail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.aborted
    with pytest.raises(RuntimeError):
        webtest.TestApp(make_app()).get("/flushfail")


def test_error_in_initialize_is_500():
    class NeedsArgs(RequestHandler):
        def initialize(self, required: str) -> None:  # type: ignore[override]
            self.required = required

        def get(self) -> None:
            self.write("unreachable")

    client = webtest.TestApp(Application([(r"/", NeedsArgs)]))
    assert "500" in client.get("/", status=500).text


# -- async handlers, disconnects ---------------------------------------------------------------


def test_async_prepare_and_method(app):
    assert app.get("/async").json == {"prepared": True}


def test_disconnect_calls_on_connection_close_without_cancelling():
    Waiter.EVENT, Waiter.LOG = aio.Event(), []
    responder = native(make_app(), b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
    run_loop_until(lambda: Waiter.EVENT.waiters == 1)
    responder.disconnect()
    assert Waiter.LOG == ["closed=True"]
    Waiter.EVENT.set()
    run_loop_until(lambda: "finish" in Waiter.LOG)
    assert Waiter.LOG == ["closed=True", "woke", "finish"]
    assert responder.status is None  # nothing was sent to the gone client


def test_disconnect_cancels_when_asked():
    Waiter.EVENT, Waiter.LOG = aio.Event(), []
    responder = native(make_app(), b"GET /wait-cancel HTTP/1.1\r\nHost: x\r\n\r\n")
    run_loop_until(lambda: Waiter.EVENT.waiters == 1)
    responder.disconnect()
    run_loop_until(lambda: "finish" in Waiter.LOG)
    assert Waiter.LOG == ["closed=True", "cancelled", "finish"]
    assert Waiter.EVENT.waiters == 0
    assert responder.status is None


def test_flush_after_disconnect_raises_client_disconnected():
    seen: list[Any] = []

    class Forever(RequestHandler):
        async def get(self) -> None:
            while True:
                self.write("tick")
                try:
                    await self.flush()
                except ClientDisconnected:
                    seen.append("gone")
                    raise
                await aio.sleep(0.001)

        def on_finish(self) -> None:
            seen.append("finish")

    responder = native(Application([(r"/", Forever)]), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    run_loop_until(lambda: len(responder.chunks) >= 3)
    responder.disconnect()
    run_loop_until(lambda: "finish" in seen)
    assert seen == ["gone", "finish"]


# -- static files ------------------------------------------------------------------------------


@pytest.fixture
def static_root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"0123456789")
    (root / "page.html").write_text("<p>hi</p>")
    (root / "sub" / "index.html").write_text("index")
    (root / "empty.bin").write_bytes(b"")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link-out").symlink_to(tmp_path / "secret.txt")
    (root / "dir-out").symlink_to(tmp_path)
    (root / "link-in").symlink_to(root / "hello.txt")
    return root


@pytest.fixture
def static_app(static_root):
    return webtest.TestApp(Application([], static_path=str(static_root)))


def test_resolve_static_path(static_root):
    root = os.path.realpath(static_root)
    assert resolve_static_path(root, "hello.txt") == os.path.join(root, "hello.txt")
    assert resolve_static_path(root, "./sub//index.html") == os.path.join(root, "sub",
                                                                          "index.html")
    assert resolve_static_path(root, "link-in") == os.path.join(root, "hello.txt")
    for bad, status in [("../secret.txt", 403), ("sub/../../secret.txt", 403),
                        ("link-out", 403), ("dir-out/secret.txt", 403), ("a\\b", 403),
                        ("hello.txt\x00.png", 404), ("/etc/passwd", 404)]:
        with pytest.raises(HTTPError) as info:
            found = resolve_static_path(root, bad)
            if not os.path.exists(found):
                raise HTTPError(404)
        assert info.value.status_code == status, bad
    with pytest.raises(HTTPError):
        resolve_static_path(root, "../x", "/static/..%2Fx")
    with pytest.raises(HTTPError):
        resolve_static_path(root, "hello.txt", "/static%2fhello.txt")


@pytest.mark.parametrize("header,size,expected", [
    ("bytes=0-4", 10, (0, 4)), ("bytes=5-", 10, (5, 9)), ("bytes=-3", 10, (7, 9)),
    ("bytes=-30", 10, (0, 9)), ("bytes=2-100", 10, (2, 9)), ("BYTES = 1-1", 10, (1, 1)),
    ("bytes=10-", 10, UNSATISFIABLE), ("bytes=10-20", 10, UNSATISFIABLE),
    ("bytes=-0", 10, UNSATISFIABLE), ("bytes=-5", 0, UNSATISFIABLE),
    ("bytes=5-2", 10, None), ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None),
    ("bytes=a-b", 10, None), ("bytes=-", 10, None), ("bytes=1", 10, None), (None, 10, None),
    ("bytes=٣-4", 10, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


def test_static_get_with_validators(static_app):
    response = static_app.get("/static/hello.txt")
    assert response.body == b"0123456789"
    assert response.content_type == "text/plain"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == "10"
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert static_app.get("/static/hello.txt", headers={"If-None-Match": etag},
                          status=304).body == b""
    static_app.get("/static/hello.txt", headers={"If-Modified-Since": modified}, status=304)
    static_app.get("/static/hello.txt",
                   headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, status=200)
    # If-None-Match wins over If-Modified-Since.
    static_app.get("/static/hello.txt", headers={"If-None-Match": '"x"',
                                                 "If-Modified-Since": modified}, status=200)
    assert static_app.get("/static/page.html").content_type == "text/html"


def test_static_ranges(static_app):
    response = static_app.get("/static/hello.txt", headers={"Range": "bytes=2-4"}, status=206)
    assert response.body == b"234"
    assert response.headers["Content-Range"] == "bytes 2-4/10"
    assert static_app.get("/static/hello.txt", headers={"Range": "bytes=-2"},
                          status=206).body == b"89"
    response = static_app.get("/static/hello.txt", headers={"Range": "bytes=20-"}, status=416)
    assert response.headers["Content-Range"] == "bytes */10"
    assert static_app.get("/static/hello.txt", headers={"Range": "bytes=0-1,4-5"},
                          status=200).body == b"0123456789"
    etag = static_app.get("/static/hello.txt").headers["ETag"]
    assert static_app.get("/static/hello.txt", headers={"Range": "bytes=0-0", "If-Range": etag},
                          status=206).body == b"0"
    assert static_app.get("/static/hello.txt",
                          headers={"Range": "bytes=0-0", "If-Range": '"stale"'},
                          status=200).body == b"0123456789"
    static_app.get("/static/empty.bin", headers={"Range": "bytes=0-"}, status=416)
    assert static_app.get("/static/empty.bin").body == b""


def test_static_head(static_app):
    response = static_app.head("/static/hello.txt")
    assert response.body == b"" and response.headers["Content-Length"] == "10"


def test_static_refusals(static_app):
    for path in ["/static/../secret.txt", "/static/link-out", "/static/dir-out/secret.txt",
                 "/static/sub", "/static/missing.txt", "/static/"]:
        assert static_app.get(path, expect_errors=True).status_int in (403, 404), path
    static_app.post("/static/hello.txt", status=405)


def test_static_traversal_natively(static_root):
    application = Application([], static_path=str(static_root))
    for target in [b"/static/../secret.txt", b"/static/%2e%2e/secret.txt",
                   b"/static/..%2Fsecret.txt", b"/static/..%2fsecret.txt",
                   b"/static/sub%2Findex.html", b"/static/hello.txt%00.png",
                   b"/static/%2E%2E/%2E%2E/etc/passwd", b"/static//etc/passwd",
                   b"/static/link-out", b"/static/..\\secret.txt"]:
        response = native(application, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert response.code in (403, 404), target
        assert b"secret" not in response.body


def test_static_directory_index(static_root):
    client = webtest.TestApp(Application([], static_path=str(static_root),
                                         static_default_filename="index.html"))
    assert client.get("/static/sub", status=301).headers["Location"] == "/static/sub/"
    assert client.get("/static/sub/").text == "index"


def test_static_url_is_versioned(static_root):
    application = Application([], static_path=str(static_root))
    versioned = application.static_url("hello.txt")
    assert versioned.startswith("/static/hello.txt?v=")
    assert application.static_url("hello.txt", include_version=False) == "/static/hello.txt"
    assert application.static_url("missing.txt") == "/static/missing.txt"
    response = webtest.TestApp(application).get(versioned)
    assert "max-age=" in response.headers["Cache-Control"]


def test_static_natively_uses_write_file(static_root):
    calls: list[tuple[int, int]] = []

    class Recording(FakeResponder):
        def write_file(self, fd: int, offset: int, count: int) -> None:
            calls.append((offset, count))
            super().write_file(fd, offset, count)

    responder = Recording("GET")
    native(Application([], static_path=str(static_root)),
           b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=3-\r\n\r\n", responder)
    assert calls == [(3, 7)]
    assert responder.done and responder.body == b"3456789"


def test_static_handler_in_a_custom_rule(static_root):
    client = webtest.TestApp(Application([
        (r"/files/(.*)", StaticFileHandler, {"path": str(static_root)})]))
    assert client.get("/files/hello.txt").body == b"0123456789"


def test_hooks_and_overrides_added_after_the_class_is_made_are_honoured():
    """A class decorator (an auth check, say) or a test may set prepare, on_finish,
    set_header or compute_etag on a handler class after it was defined."""
    finished = []

    def require_token(cls):
        def prepare(self):
            if self.request.headers.get("X-Token") != "secret":
                raise HTTPError(403)
        cls.prepare = prepare
        return cls

    @require_token
    class Guarded(RequestHandler):
        def get(self):
            self.write("in")

    client = webtest.TestApp(Application([(r"/", Guarded)]))
    assert client.get("/", status=403)
    assert client.get("/", headers={"X-Token": "secret"}).text == "in"

    Guarded.on_finish = lambda self: finished.append(self.get_status())
    Guarded.compute_etag = lambda self: None
    original = RequestHandler.set_header

    def set_header(self, name, value):
        original(self, name, value.upper() if name == "X-Seen" else value)
    Guarded.set_header = set_header
    Guarded.get = lambda self: (self.set_header("X-Seen", "yes"), self.write("in"))
    response = client.get("/", headers={"X-Token": "secret"})
    assert finished == [200]
    assert "ETag" not in response.headers
    assert response.headers["X-Seen"] == "YES"


def test_set_header_replaced_on_the_instance_sees_etag_and_content_length():
    """finish sets the ETag through set_header, whoever provides it: the class, a
    subclass, or the instance (a wrapper put there by initialize or a test).  The
    Content-Length of a body sent whole is the responder's; an answer to HEAD, sent
    without its body, gets it through set_header too."""
    seen: list[tuple[str, str]] = []

    class Recording(RequestHandler):
        def initialize(self) -> None:
            original = self.set_header

            def set_header(name: str, value: Any) -> None:
                seen.append((name, str(value)))
                original(name, value)
            self.set_header = set_header  # type: ignore[method-assign]

        def get(self) -> None:
            self.write(b"Hello World!")

    application = Application([(r"/", Recording)])
    response = webtest.TestApp(application).get("/")
    assert ("ETag", response.headers["ETag"]) in seen
    assert response.headers["Content-Length"] == "12"
    assert [name for name, _ in seen] == ["ETag"]

    seen.clear()
    head = native(application, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (head.code, head.header("Content-Length"), head.header("ETag")) == (
        200, "12", response.headers["ETag"])
    assert seen == [("ETag", response.headers["ETag"]), ("Content-Length", "12")]


def test_hooks_patched_on_a_served_class_are_used_by_the_next_request():
    """Served natively (the server's path): every hook and method is looked up on each
    request, so a class changed after it served requests behaves as it now reads."""
    class Page(RequestHandler):
        def get(self) -> None:
            self.write("page")

    application = Application([(r"/", Page, {})])
    get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    first = native(application, get)
    assert (first.code, first.body, first.header("X-Default")) == (200, b"page", None)
    etag = first.header("ETag")

    Page.set_default_headers = lambda self: self.set_header("X-Default", "on")
    Page.check_etag_header = lambda self: True  # every response "matches": 304
    response = native(application, get)
    assert (response.code, response.body, response.header("X-Default")) == (304, b"", "on")
    assert response.header("ETag") == etag

    del Page.check_etag_header
    Page.compute_etag = lambda self: None
    Page.SUPPORTED_METHODS = ("GET", "POST")
    Page.post = lambda self: self.write("posted")
    Page.initialize = lambda self, **kwargs: setattr(self, "seen_kwargs", kwargs)
    Page.on_finish = lambda self: finished.append(self.seen_kwargs)
    finished: list[Any] = []
    response = native(application, get)
    assert (response.code, response.body, response.header("ETag")) == (200, b"page", None)
    post = native(application, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert (post.code, post.body) == (200, b"posted")
    assert finished == [{}, {}]

    Page.SUPPORTED_METHODS = ("GET",)
    assert native(application, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                  ).code == 405
    Page.prepare = lambda self: self.send_error(403)
    assert native(application, get).code == 403


def test_request_attributes_read_lazily_can_be_assigned():
    """uri, path, query, version, protocol, host and remote_ip come from the parsed
    request on first use; an application may still set them (remote_ip from a trusted
    header, say)."""
    class Peer(RequestHandler):
        def get(self):
            request = self.request
            seen = {"before": request.remote_ip}
            request.remote_ip = "203.0.113.9"
            seen.update(after=request.remote_ip, uri=request.uri, path=request.path,
                        query=request.query, version=request.version,
                        protocol=request.protocol, host=request.host)
            self.write(seen)

    client = webtest.TestApp(Application([(r"/peer", Peer)]),
                             extra_environ={"REMOTE_ADDR": "192.0.2.1"})
    assert client.get("/peer?a=1", headers={"Host": "example.org:81"}).json == {
        "before": "192.0.2.1", "after": "203.0.113.9", "uri": "/peer?a=1", "path": "/peer",
        "query": "a=1", "version": "HTTP/1.0", "protocol": "http", "host": "example.org:81"}


def test_methods_outside_the_usual_ones_and_methods_set_on_the_instance_are_run():
    """The method is found by its lower-cased name whatever it is (a WebDAV method a
    handler adds to SUPPORTED_METHODS), and on the instance first (initialize may put
    one there)."""
    class Dav(RequestHandler):
        SUPPORTED_METHODS = RequestHandler.SUPPORTED_METHODS + ("PROPFIND",)

        def initialize(self) -> None:
            self.get = lambda: self.write("instance get")  # type: ignore[method-assign]

        def get(self) -> None:
            self.write("class get")

        def propfind(self) -> None:
            self.write("propfind")

    application = Application([(r"/", Dav)])
    assert native(application, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").body == b"instance get"
    assert native(application, b"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n").body == b"propfind"
