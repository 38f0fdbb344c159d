"""The Django example's static files served by wsgiloop's ``--static`` over the wire.

setup_demo.py --collectstatic fills a temporary STATIC_ROOT; the live server runs
``--static /static=<STATIC_ROOT>`` in front of the Django app.  DEBUG is off, so Django
itself would answer 404 for anything under /static/: a 200 there is wsgiloop's.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import re
import subprocess
import sys

import pytest
from support import ROOT, ServerProcess, raw_request

SITE = ROOT / "examples" / "django_site"
APP_SPEC = "examples.django_site.mysite.wsgi:application"
BASE_CSS = "/static/admin/css/base.css"
SECRET = b"the static root's neighbour: never to be served\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fresh database and STATIC_ROOT; a secret file beside STATIC_ROOT (what a
    traversal out of the root would reach)."""
    tmp = tmp_path_factory.mktemp("django_static")
    static_root = tmp / "static"
    env = {"DJANGO_SITE_DB": str(tmp / "db.sqlite3"),
           "DJANGO_SITE_STATIC_ROOT": str(static_root),
           "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    proc = subprocess.run([sys.executable, str(SITE / "setup_demo.py"), "--collectstatic"],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (static_root / "admin" / "css" / "base.css").is_file(), proc.stdout
    (tmp / "secret.txt").write_bytes(SECRET)
    return env, static_root


@pytest.fixture(scope="module")
def server(site):
    env, static_root = site
    with ServerProcess(APP_SPEC, "--static", f"/static={static_root}", env=env) as s:
        yield s
    assert s.proc.returncode == 0, s.log
    assert not re.search(r"\[(ERROR|CRITICAL)\]|Traceback", s.log), s.log


@pytest.fixture
def conn(server):
    c = http.client.HTTPConnection(server.host, server.port, timeout=10)
    yield c
    c.close()


def get(conn, path, method="GET", headers=None):
    conn.request(method, path, headers=headers or {})
    res = conn.getresponse()
    return res, res.read()


def test_admin_css_is_served_by_wsgiloop(conn, site):
    expected = (site[1] / "admin" / "css" / "base.css").read_bytes()
    res, body = get(conn, BASE_CSS)
    assert res.status == 200
    assert body == expected
    assert res.getheader("Content-Type") == "text/css"
    assert res.getheader("Content-Length") == str(len(expected))
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', res.getheader("ETag"))
    assert email.utils.parsedate_to_datetime(res.getheader("Last-Modified")) is not None
    assert res.getheader("Cache-Control") == "public, max-age=3600"
    assert res.getheader("Accept-Ranges") == "bytes"
    assert res.getheader("Server") == "wsgiloop"
    # Django's own headers (from its middleware) are absent: Django never saw it
    assert res.getheader("X-Frame-Options") is None
    assert not res.will_close


def test_the_admin_pages_link_to_the_served_css(conn):
    res, body = get(conn, "/admin/login/")
    assert res.status == 200
    assert b"<title>Log in" in body
    assert res.getheader("X-Frame-Options") == "DENY"  # Django answered this one
    links = re.findall(rb'href="(/static/[^"]+\.css)"', body)
    assert BASE_CSS.encode() in links
    for link in links:
        res, css = get(conn, link.decode())
        assert res.status == 200 and res.getheader("Content-Type") == "text/css", link
        assert css


def test_large_file_and_range_in_its_middle(conn, site):
    path = "admin/js/vendor/jquery/jquery.js"
    expected = (site[1] / path).read_bytes()
    assert len(expected) > 200_000
    res, body = get(conn, "/static/" + path)
    assert res.status == 200 and body == expected
    assert res.getheader("Content-Type") in ("text/javascript", "application/javascript")
    res, body = get(conn, "/static/" + path, headers={"Range": "bytes=100000-150000"})
    assert res.status == 206
    assert res.getheader("Content-Range") == f"bytes 100000-150000/{len(expected)}"
    assert body == expected[100000:150001]


def test_conditional_requests(conn):
    res, _ = get(conn, BASE_CSS)
    etag, modified = res.getheader("ETag"), res.getheader("Last-Modified")

    res, body = get(conn, BASE_CSS, headers={"If-None-Match": etag})
    assert res.status == 304 and body == b""
    assert res.getheader("ETag") == etag
    assert res.getheader("Cache-Control") == "public, max-age=3600"

    res, body = get(conn, BASE_CSS, headers={"If-None-Match": f'"other", {etag}'})
    assert res.status == 304 and body == b""
    res, body = get(conn, BASE_CSS, headers={"If-None-Match": '"stale"'})
    assert res.status == 200 and body

    res, body = get(conn, BASE_CSS, headers={"If-Modified-Since": modified})
    assert res.status == 304 and body == b""
    res, body = get(conn, BASE_CSS, headers={"If-Modified-Since":
                                             "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert res.status == 200 and body
    # the connection is still good after the 304s
    assert not res.will_close


def test_ranges(conn, site):
    expected = (site[1] / "admin" / "css" / "base.css").read_bytes()
    size = len(expected)

    res, body = get(conn, BASE_CSS, headers={"Range": "bytes=0-99"})
    assert res.status == 206
    assert res.getheader("Content-Range") == f"bytes 0-99/{size}"
    assert res.getheader("Content-Length") == "100"
    assert res.getheader("Content-Type") == "text/css"
    assert body == expected[:100]

    res, body = get(conn, BASE_CSS, headers={"Range": "bytes=-50"})
    assert res.status == 206 and body == expected[-50:]
    assert res.getheader("Content-Range") == f"bytes {size - 50}-{size - 1}/{size}"

    res, body = get(conn, BASE_CSS, headers={"Range": f"bytes={size}-"})
    assert res.status == 416
    assert res.getheader("Content-Range") == f"bytes */{size}"

    etag = res.getheader("ETag")
    res, body = get(conn, BASE_CSS, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert res.status == 206 and body == expected[:10]
    res, body = get(conn, BASE_CSS, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert res.status == 200 and body == expected


def test_head_has_length_and_no_body(conn, site):
    size = (site[1] / "admin" / "css" / "base.css").stat().st_size
    res, body = get(conn, BASE_CSS, method="HEAD")
    assert res.status == 200
    assert res.getheader("Content-Length") == str(size)
    assert res.getheader("Content-Type") == "text/css"
    assert res.getheader("ETag")
    assert body == b""
    # nothing stray follows the head: the next request on the connection is answered
    res, body = get(conn, BASE_CSS)
    assert res.status == 200 and len(body) == size


def test_head_on_a_raw_socket_sends_no_body(server, site):
    size = (site[1] / "admin" / "css" / "base.css").stat().st_size
    with server.connect() as sock:
        data = raw_request(sock, f"HEAD {BASE_CSS} HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n".encode())
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"\r\nContent-Length: {size}".encode() in head
    assert rest == b""


@pytest.mark.parametrize("target", [
    "/static/../manage.py",
    "/static/%2e%2e/manage.py",
    "/static/%2E%2E/secret.txt",
    "/static/../secret.txt",
    "/static/admin/../../secret.txt",
    "/static/admin/%2e%2e/%2e%2e/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%5csecret.txt",
    "/static/..\\secret.txt",
    "/static/%00secret.txt",
])
def test_traversal_is_refused(server, target):
    with server.connect() as sock:
        data = raw_request(sock, f"GET {target} HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n".encode())
    status = data.split(b" ", 2)[1]
    assert status in (b"400", b"403", b"404"), data[:300]
    assert SECRET not in data
    assert b"DJANGO_SETTINGS_MODULE" not in data  # manage.py's text


def test_missing_static_file_is_404_and_other_paths_reach_django(conn):
    res, _ = get(conn, "/static/admin/css/no-such.css")
    assert res.status == 404
    res, _ = get(conn, "/static/admin/css/")  # a directory
    assert res.status == 404
    res, body = get(conn, "/admin/login/")
    assert res.status == 200 and b"csrfmiddlewaretoken" in body
    res, _ = get(conn, "/staticfoo/admin/css/base.css")  # not under the prefix: Django's
    assert res.status == 404 and res.getheader("X-Frame-Options") == "DENY"


def test_without_static_django_answers_404(site):
    """The control: the same URL without --static is Django's 404 (DEBUG is off)."""
    env, _ = site
    with ServerProcess(APP_SPEC, env=env) as s:
        c = http.client.HTTPConnection(s.host, s.port, timeout=10)
        try:
            res, _ = get(c, BASE_CSS)
            assert res.status == 404
            assert res.getheader("ETag") is None
        finally:
            c.close()
