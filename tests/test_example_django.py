"""The Django example site, tested twice: in-process through WebTest, and over the wire
against a live ``wsgiloop examples.django_site.mysite.wsgi:application`` (WebTest driving
:class:`WireApp`).  Both use one temporary sqlite database prepared by setup_demo.py."""

from __future__ import annotations

import csv
import hashlib
import http.client
import importlib
import io
import os
import subprocess
import sys
import uuid

import pytest
import webtest
from support import ROOT, ServerProcess
from wire import webtest_client, wire_of

SITE = ROOT / "examples" / "django_site"
APP_SPEC = "examples.django_site.mysite.wsgi:application"
DOWNLOAD_FILE = SITE / "notes" / "data" / "about-wsgiloop.txt"


def _setup_demo(env: dict) -> str:
    proc = subprocess.run([sys.executable, str(SITE / "setup_demo.py")], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def site_env(tmp_path_factory):
    """Environment for the site: a fresh database with migrations and the demo user."""
    tmp = tmp_path_factory.mktemp("django_site")
    env = {"DJANGO_SITE_DB": str(tmp / "db.sqlite3"),
           "DJANGO_SITE_STATIC_ROOT": str(tmp / "static"),
           "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    full = {**os.environ, **env}
    first = _setup_demo(full)
    assert "Applying notes.0001_initial... OK" in first
    assert "created superuser 'admin'" in first
    second = _setup_demo(full)  # idempotent
    assert "No migrations to apply." in second
    assert "superuser 'admin' already exists" in second
    return env


@pytest.fixture(scope="module")
def django_app(site_env):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in site_env.items():
            mp.setenv(key, value)
        if str(ROOT) not in sys.path:
            mp.syspath_prepend(str(ROOT))
        application = importlib.import_module("examples.django_site.mysite.wsgi").application
        from django.conf import settings

        assert str(settings.DATABASES["default"]["NAME"]) == site_env["DJANGO_SITE_DB"], \
            "Django was already set up in this process with another database"
        assert settings.DEBUG is False
        yield application


@pytest.fixture(scope="module")
def live_server(site_env):
    # Password hashing at login can hold the loop past the 1 s warning on a busy machine:
    # that warning is the server doing its job, not a fault of the site.
    with ServerProcess(APP_SPEC, "--slow-callback-threshold", "10", env=site_env) as server:
        yield server
    assert server.proc.returncode == 0, server.log


@pytest.fixture(params=["in-process", "wire"])
def client(request):
    yield from webtest_client(request, lambda: request.getfixturevalue("django_app"))


def _set_cookie_names(res) -> list[str]:
    return sorted(v.strip().split("=", 1)[0] for v in res.headers.getall("Set-Cookie"))


def test_admin_login_page(client):
    res = client.get("/admin/login/")
    assert res.status_int == 200
    assert res.html.title.text.strip().startswith("Log in")
    form = res.forms["login-form"]
    assert {"username", "password", "csrfmiddlewaretoken"} <= set(form.fields)
    assert form["csrfmiddlewaretoken"].value
    assert "csrftoken" in client.cookies


def test_admin_login_with_csrf_token_and_session_cookie(client):
    res = client.get("/admin/")
    assert res.status_int == 302
    assert res.location.endswith("/admin/login/?next=/admin/")
    page = res.follow()

    form = page.forms["login-form"]
    form["username"], form["password"] = "admin", "wrong"
    res = form.submit()
    assert res.status_int == 200
    assert "Please enter the correct username and password" in res.text
    assert "sessionid" not in client.cookies

    form = res.forms["login-form"]
    form["username"], form["password"] = "admin", "admin"
    res = form.submit()
    assert res.status_int == 302
    assert res.location.endswith("/admin/")
    # two Set-Cookie headers in one response: the session, and a rotated CSRF token
    assert _set_cookie_names(res) == ["csrftoken", "sessionid"]
    assert "sessionid" in client.cookies
    page = res.follow()
    assert page.status_int == 200
    assert "Site administration" in page.text
    assert "/admin/notes/note/" in page.text

    changelist = client.get("/admin/notes/note/")
    assert changelist.status_int == 200
    assert "Select note to change" in changelist.text

    # without the session cookie the admin is closed again
    anonymous = webtest.TestApp(client.app)
    assert anonymous.get("/admin/notes/note/").status_int == 302


def test_admin_login_without_csrf_token_is_forbidden(client):
    client.get("/admin/login/")
    res = client.post("/admin/login/", {"username": "admin", "password": "admin"},
                      status=403)
    assert "CSRF" in res.text
    assert "sessionid" not in client.cookies


def test_note_create_with_the_model_form(client):
    title = f"note {uuid.uuid4().hex[:8]}"
    page = client.get("/")
    assert page.status_int == 200
    form = page.forms["note-form"]
    assert {"title", "body", "csrfmiddlewaretoken"} <= set(form.fields)

    form["title"] = ""
    res = form.submit()
    assert res.status_int == 200  # the form again, with the error
    assert "This field is required." in res.html.find(class_="errorlist").text

    form = res.forms["note-form"]
    form["title"], form["body"] = title, "first line\nsecond line"
    res = form.submit()
    assert res.status_int == 302
    assert res.location.endswith("/")
    page = res.follow()
    assert f"Saved note “{title}”." in page.html.find(class_="message").text
    assert title in [t.text for t in page.html.select("#notes .title")]
    assert "first line<br>second line" in page.text

    client.post("/", {"title": "no token"}, status=403)


def test_streaming_csv_export(client):
    title = f"exported, \"quoted\" {uuid.uuid4().hex[:8]}"
    form = client.get("/").forms["note-form"]
    form["title"], form["body"] = title, "line one\nline two"
    form.submit(status=302)

    res = client.get("/export.csv")
    assert res.status_int == 200
    assert res.content_type == "text/csv"
    assert res.headers["Content-Disposition"] == 'attachment; filename="notes.csv"'
    rows = list(csv.reader(io.StringIO(res.text)))
    assert rows[0] == ["id", "created", "title", "body"]
    assert [title, "line one\nline two"] in [row[2:] for row in rows[1:]]
    wire = wire_of(client)
    if wire is not None:  # a StreamingHttpResponse has no length: chunked on the wire
        assert wire.last.version == 11
        assert wire.last.header("Transfer-Encoding") == "chunked"
        assert wire.last.header("Content-Length") is None


def test_file_response(client):
    expected = DOWNLOAD_FILE.read_bytes()
    res = client.get("/download/")
    assert res.status_int == 200
    assert res.body == expected
    assert res.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert res.headers["Content-Disposition"] == 'attachment; filename="about-wsgiloop.txt"'
    assert res.headers["Content-Length"] == str(len(expected))
    wire = wire_of(client)
    if wire is not None:
        assert wire.last.header("Content-Length") == str(len(expected))
        assert wire.last.header("Transfer-Encoding") is None
        assert wire.last.body == expected


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024])
def test_file_upload(client, size):
    data = os.urandom(size)
    page = client.get("/upload/")
    form = page.forms["upload-form"]
    form["file"] = webtest.Upload("data.bin", data, "application/octet-stream")
    res = form.submit()
    assert res.status_int == 200
    assert res.json == {"name": "data.bin", "size": size,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "spooled_to_disk": size > 2_621_440}


def test_file_upload_errors(client):
    page = client.get("/upload/")
    res = page.forms["upload-form"].submit(status=400)
    assert res.json["errors"]["file"][0]["code"] == "required"
    client.post("/upload/", upload_files=[("file", "x.bin", b"x")], status=403)


def test_not_found(client):
    res = client.get("/no/such/page/", status=404)
    assert "Not Found" in res.text


def test_head_of_a_file_response_over_the_wire(live_server):
    """HEAD: the FileResponse's headers with no body, and the connection stays usable."""
    conn = http.client.HTTPConnection(live_server.host, live_server.port, timeout=10)
    try:
        conn.request("HEAD", "/download/")
        res = conn.getresponse()
        assert res.status == 200
        assert res.getheader("Content-Length") == str(DOWNLOAD_FILE.stat().st_size)
        assert res.read() == b""
        assert not res.will_close
        conn.request("GET", "/download/")
        res = conn.getresponse()
        assert res.status == 200 and res.read() == DOWNLOAD_FILE.read_bytes()
    finally:
        conn.close()
