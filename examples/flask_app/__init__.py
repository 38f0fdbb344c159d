"""A small Flask application to serve with wsgiloop.

Run it from the repository root::

    python -m wsgiloop examples.flask_app:app --bind 127.0.0.1:8000

Pages and endpoints:

* ``GET /`` -- the item list, a form to add one, login/logout and an upload form;
* ``POST /`` -- add an item from the form (CSRF-protected, then redirect back);
* ``POST /login`` and ``POST /logout`` -- session-cookie login, demo user ``demo``/``demo``;
* ``GET``/``POST /api/items`` -- the same items as JSON (POST needs the CSRF token in
  an ``X-CSRF-Token`` header);
* ``POST /upload`` -- a multipart upload; answers with the file's size and SHA-256;
* ``GET /stream`` -- a response streamed from a generator (``?lines=N``);
* ``GET /download`` -- a file from this package sent with ``send_file``;
* anything else -- a custom 404 page.

Every POST is checked against a CSRF token kept in the session, taken from the form
field ``csrf_token`` or the ``X-CSRF-Token`` header.  Items live in memory, per process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from flask import (
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

HERE = Path(__file__).resolve().parent
DOWNLOAD_FILE = HERE / "data" / "wsgiloop-notes.txt"
DEMO_USER, DEMO_PASSWORD = "demo", "demo"

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "dev-only-secret-change-me"),
    MAX_CONTENT_LENGTH=32 * 1024 * 1024,
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
)

_items: list[dict] = [{"id": 1, "name": "Read the wsgiloop README", "by": "demo"}]
_items_lock = threading.Lock()


def add_item(name: str) -> dict:
    with _items_lock:
        item = {"id": max((i["id"] for i in _items), default=0) + 1, "name": name,
                "by": session.get("user", "anonymous")}
        _items.append(item)
        return item


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf_token")
    if token is None:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


app.jinja_env.globals["csrf_token"] = csrf_token


@app.before_request
def check_csrf():
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    expected = session.get("csrf_token")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(expected, given):
        if request.path.startswith("/api/") or request.path == "/upload":
            return jsonify(error="missing or bad CSRF token"), 400
        abort(400, "missing or bad CSRF token")
    return None


@app.get("/")
def index():
    with _items_lock:
        items = list(_items)
    return render_template("index.html", items=items, user=session.get("user"))


@app.post("/")
def index_post():
    name = request.form.get("name", "").strip()
    if not name:
        flash("An item needs a name.")
    else:
        add_item(name[:200])
        flash(f"Added {name[:200]!r}.")
    return redirect(url_for("index"))


@app.post("/login")
def login():
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if hmac.compare_digest(username, DEMO_USER) and hmac.compare_digest(password, DEMO_PASSWORD):
        session.clear()  # a fresh session (and CSRF token) after logging in
        session["user"] = username
        flash(f"Signed in as {username}.")
    else:
        flash("Wrong username or password.")
    return redirect(url_for("index"))


@app.post("/logout")
def logout():
    session.clear()
    flash("Signed out.")
    return redirect(url_for("index"))


@app.get("/api/items")
def api_items():
    with _items_lock:
        return jsonify(items=list(_items))


@app.post("/api/items")
def api_items_create():
    data = request.get_json(silent=True)
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip():
        return jsonify(error="expected a JSON object with a non-empty 'name'"), 400
    return jsonify(add_item(name.strip()[:200])), 201


@app.post("/upload")
def upload():
    upload = request.files.get("file")
    if upload is None:
        return jsonify(error="no 'file' part in the form"), 400
    digest, size = hashlib.sha256(), 0
    while block := upload.stream.read(65536):
        digest.update(block)
        size += len(block)
    return jsonify(filename=upload.filename, size=size, sha256=digest.hexdigest())


@app.get("/stream")
def stream():
    lines = min(request.args.get("lines", 10, type=int), 10_000)

    def generate():
        for n in range(1, lines + 1):
            yield f"line {n} of {lines}\n"

    return app.response_class(generate(), mimetype="text/plain")


@app.get("/download")
def download():
    return send_file(DOWNLOAD_FILE, mimetype="text/plain", as_attachment=True)


@app.errorhandler(404)
def not_found(error):
    return render_template("404.html", path=request.path), 404
