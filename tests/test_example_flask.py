"""The Flask example, tested twice: in-process through WebTest, and over the wire
against a live ``wsgiloop examples.flask_app:app`` (WebTest driving :class:`WireApp`)."""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
import uuid

import pytest
import webtest
from support import ROOT, ServerProcess
from wire import webtest_client, wire_of

APP_SPEC = "examples.flask_app:app"


def _flask_module():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("examples.flask_app")


@pytest.fixture(scope="module")
def live_server():
    with ServerProcess(APP_SPEC, "--slow-callback-threshold", "10") as server:
        yield server
    assert server.proc.returncode == 0, server.log


@pytest.fixture(params=["in-process", "wire"])
def client(request):
    yield from webtest_client(request, lambda: _flask_module().app)


def _token(page) -> str:
    return page.html.find("meta", attrs={"name": "csrf-token"})["content"]


def test_index_page(client):
    res = client.get("/")
    assert res.status_int == 200
    assert res.content_type == "text/html"
    assert res.html.find("h1").text == "Items"
    assert "Read the wsgiloop README" in res.text
    assert set(res.forms) >= {"login", "add-item", "upload"}
    assert len(_token(res)) >= 32
    assert res.forms["add-item"]["csrf_token"].value == _token(res)
    assert "session" in client.cookies  # the CSRF token lives in the session


def test_form_post_with_csrf_token(client):
    name = f"item {uuid.uuid4().hex[:8]}"
    form = client.get("/").forms["add-item"]
    form["name"] = name
    res = form.submit()
    assert res.status_int == 302
    assert res.location.endswith("/")
    page = res.follow()
    assert f"Added &#39;{name}&#39;." in page.text
    assert name in [li.contents[0].strip() for li in page.html.select("#items li")]


def test_form_post_without_or_with_a_wrong_token_is_refused(client):
    token = _token(client.get("/"))
    res = client.post("/", {"name": "sneaky"}, status=400)
    assert "CSRF" in res.text
    client.post("/", {"name": "sneaky", "csrf_token": token[::-1]}, status=400)
    fresh = webtest.TestApp(client.app)  # no session cookie: the token alone is not enough
    fresh.post("/", {"name": "sneaky", "csrf_token": token}, status=400)
    assert "sneaky" not in client.get("/").text


def test_login_and_logout_with_a_session_cookie(client):
    page = client.get("/")
    assert page.html.find(id="whoami") is None
    old_token = _token(page)

    form = page.forms["login"]
    form["username"], form["password"] = "demo", "wrong"
    res = form.submit().follow()
    assert "Wrong username or password." in res.text
    assert res.html.find(id="whoami") is None

    form = res.forms["login"]
    form["username"], form["password"] = "demo", "demo"
    res = form.submit()
    assert res.status_int == 302
    set_cookie = res.headers.getall("Set-Cookie")
    assert len(set_cookie) == 1 and set_cookie[0].startswith("session=")
    assert "HttpOnly" in set_cookie[0]
    page = res.follow()
    assert page.html.find(id="whoami").text == "Signed in as demo."
    new_token = _token(page)
    assert new_token != old_token  # a new session after logging in
    client.post("/logout", {"csrf_token": old_token}, status=400)

    # the session travels in the cookie alone: another client with it is signed in
    other = webtest.TestApp(client.app)
    other.set_cookie("session", client.cookies["session"])
    assert other.get("/").html.find(id="whoami").text == "Signed in as demo."

    page = page.forms[0].submit().follow()  # the sign-out form
    assert "Signed out." in page.text
    assert page.html.find(id="whoami") is None


def test_json_api(client):
    res = client.get("/api/items")
    assert res.content_type == "application/json"
    before = res.json["items"]
    assert {"id": 1, "name": "Read the wsgiloop README", "by": "demo"} in before

    token = _token(client.get("/"))
    name = f"api {uuid.uuid4().hex[:8]}"
    res = client.post_json("/api/items", {"name": name}, headers={"X-CSRF-Token": token})
    assert res.status_int == 201
    assert res.json["name"] == name and res.json["by"] == "anonymous"
    assert res.json in client.get("/api/items").json["items"]

    res = client.post_json("/api/items", {"name": name}, status=400)
    assert res.json == {"error": "missing or bad CSRF token"}
    res = client.post_json("/api/items", {"nom": 1}, headers={"X-CSRF-Token": token},
                           status=400)
    assert "name" in res.json["error"]
    assert len(client.get("/api/items").json["items"]) == len(before) + 1


def test_upload_20mb_file(client):
    data = os.urandom(20 * 1024 * 1024)
    form = client.get("/").forms["upload"]
    form["file"] = webtest.Upload("blob.bin", data, "application/octet-stream")
    res = form.submit()
    assert res.status_int == 200
    assert res.json == {"filename": "blob.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()}
    wire = wire_of(client)
    if wire is not None:
        assert wire.last.status == 200 and wire.last.method == "POST"


def test_upload_needs_the_token_and_a_file(client):
    res = client.post("/upload", upload_files=[("file", "x.txt", b"x")], status=400)
    assert res.json["error"] == "missing or bad CSRF token"
    token = _token(client.get("/"))
    res = client.post("/upload", {"csrf_token": token}, status=400)
    assert "no 'file'" in res.json["error"]


def test_streamed_response(client):
    res = client.get("/stream", {"lines": 500})
    assert res.status_int == 200
    assert res.content_type == "text/plain"
    lines = res.text.splitlines()
    assert len(lines) == 500
    assert lines[0] == "line 1 of 500" and lines[-1] == "line 500 of 500"
    wire = wire_of(client)
    if wire is not None:  # no length known up front: chunked on the wire
        assert wire.last.version == 11
        assert wire.last.header("Transfer-Encoding") == "chunked"
        assert wire.last.header("Content-Length") is None


def test_send_file_download(client):
    expected = (ROOT / "examples" / "flask_app" / "data" / "wsgiloop-notes.txt").read_bytes()
    res = client.get("/download")
    assert res.status_int == 200
    assert res.body == expected
    assert res.content_type == "text/plain"
    assert res.headers["Content-Disposition"] == "attachment; filename=wsgiloop-notes.txt"
    assert int(res.headers["Content-Length"]) == len(expected)
    wire = wire_of(client)
    if wire is not None:
        assert wire.last.header("Content-Length") == str(len(expected))
        assert wire.last.header("Transfer-Encoding") is None
        assert len(wire.last.body) == len(expected)


def test_custom_404_page(client):
    res = client.get("/no/such/page", status=404)
    assert res.content_type == "text/html"
    assert res.html.find("h1").text == "Page not found"
    assert res.html.find("code").text == "/no/such/page"
    assert re.search(r"<title>Not found</title>", res.text)


def test_send_file_reaches_wsgi_file_wrapper():
    """Flask's send_file hands wsgiloop a FileWrapper over a real file: the gateway then
    sends it with sendfile (see the file-wrapper tests in test_e2e_wsgi.py)."""
    from wsgiref.util import setup_testing_defaults

    from examples.flask_app import app
    from wsgiloop.wsgi import FileWrapper

    environ: dict = {"PATH_INFO": "/download", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    environ["wsgi.file_wrapper"] = FileWrapper
    result = app(environ, lambda status, headers, exc_info=None: None)
    try:
        assert isinstance(result, FileWrapper)
        assert result.fileno() is not None  # a real file: sendfile applies
    finally:
        result.close()
