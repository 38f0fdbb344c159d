"""The WSGI application of tests/test_metrics.py and tests/test_health.py.

Like ``workers_apps:app`` (whose ``/`` and ``/slow`` contract ``workers_support``
relies on), every answer starts with the pid of the worker that produced it:

* ``/`` -- ``<pid>``;
* ``/slow?s=N`` -- sleeps N seconds, then ``<pid> slept N``; with ``&mark=PATH`` it
  first creates the file PATH (so a test knows the request is in the application);
* ``/status/CODE`` -- that status, body ``<pid>``;
* ``/bytes?n=N`` -- a body of exactly N bytes (``x``), no pid;
* ``/echo`` -- reads the request body, answers ``<pid> <length>``;
* ``/warn`` -- logs a warning on ``wsgiloop.error``, answers ``<pid>``.

``native`` is a native application with a WebSocket echo at ``/ws``.
``METRICS_APPS_IMPORT_DELAY`` (seconds) makes the import slow: workers boot late.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

time.sleep(float(os.environ.get("METRICS_APPS_IMPORT_DELAY") or 0))


def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    pid = str(os.getpid())
    status = "200 OK"
    if path == "/slow":
        seconds = float(query.get("s", "3"))
        if "mark" in query:
            open(query["mark"], "w").close()
        time.sleep(seconds)
        body = f"{pid} slept {seconds:g}".encode()
    elif path.startswith("/status/"):
        status = f"{int(path.rsplit('/', 1)[1])} Whatever"
        body = pid.encode()
    elif path == "/bytes":
        body = b"x" * int(query.get("n", "0"))
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length)
        body = f"{pid} {len(data)}".encode()
    elif path == "/warn":
        logging.getLogger("wsgiloop.error").warning("metrics_apps: a warning")
        body = pid.encode()
    else:
        body = pid.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _native() -> Any:
    """``native``: a native application with a WebSocket echo at ``/ws``."""
    from wsgiloop.web import Application, WebSocketHandler

    class Echo(WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

    return Application([(r"/ws", Echo)])


native = _native()
