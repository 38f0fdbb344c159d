"""WSGI applications served by every server in the benchmark (see bench/run.py).

Every server gets exactly the same callables, imported as ``bench.apps:NAME``
with the working directory set to the repository root.

* ``hello``       -- 12-byte body ``Hello World!`` with a Content-Length.
* ``chunked``     -- 256 KiB body yielded as sixteen 16 KiB chunks (a generator),
  with a Content-Length, so servers stream the pieces instead of re-framing them.
* ``echo``        -- reads ``CONTENT_LENGTH`` bytes of ``wsgi.input`` and returns them.
* ``flask_hello`` -- a real Flask application whose ``/`` returns ``Hello World!``,
  built when first asked for (a module ``__getattr__``, which every server's
  ``module:attr`` loader goes through), so that only the server of the flask scenario
  imports Flask and the other scenarios' processes do not carry its memory.
* ``mixed``       -- routes of several shapes for bench/soak.py.

The payloads are built once at import time so the benchmark measures the
server, not the application.
"""

from __future__ import annotations

HELLO_BODY = b"Hello World!"
CHUNK_SIZE = 16 * 1024
CHUNK_COUNT = 16  # 16 x 16 KiB = 256 KiB
CHUNK = b"x" * CHUNK_SIZE
CHUNKED_LENGTH = CHUNK_SIZE * CHUNK_COUNT


def hello(environ, start_response):
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(HELLO_BODY))),
    ])
    return [HELLO_BODY]


def chunked(environ, start_response):
    start_response("200 OK", [
        ("Content-Type", "application/octet-stream"),
        ("Content-Length", str(CHUNKED_LENGTH)),
    ])
    return _chunks()


def _chunks():
    for _ in range(CHUNK_COUNT):
        yield CHUNK


def echo(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    start_response("200 OK", [
        ("Content-Type", environ.get("CONTENT_TYPE") or "application/octet-stream"),
        ("Content-Length", str(len(body))),
    ])
    return [body]


def _make_flask_app():
    try:
        from flask import Flask
    except ImportError:  # only the "flask" scenario needs it; bench/run.py checks first
        return None
    app = Flask("bench_flask_hello")

    @app.route("/")
    def index():
        return "Hello World!"

    return app


def __getattr__(name: str):
    if name == "flask_hello":
        app = _make_flask_app()
        globals()[name] = app  # built once: every later look-up finds the same app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def mixed(environ, start_response):
    """The soak's application (bench/soak.py): a few routes of different shapes."""
    path = environ["PATH_INFO"]
    if path == "/hello":
        return hello(environ, start_response)
    if path == "/echo":
        return echo(environ, start_response)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks_of(4)  # 64 KiB, no Content-Length: chunked framing
    if path == "/error":
        raise RuntimeError("the soak's deliberate application error")
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", "9")])
    return [b"not found"]


def _chunks_of(count):
    for _ in range(count):
        yield CHUNK
