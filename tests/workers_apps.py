"""WSGI applications for the process-level tests (``tests/test_workers.py``).

``app`` routes on ``PATH_INFO``; every answer is ``text/plain`` and starts with the pid
of the process that produced it, so a test knows which worker served it:

* ``/`` (and any unknown path) -- ``<pid>``;
* ``/slow?s=N`` -- sleeps N seconds (default 3), then ``<pid> slept N``;
* ``/stuck`` -- never returns: it spins in :func:`wsgiloop_test_stuck_forever`, a name
  the tests look for in the stack dumps in the server's log;
* ``/grow?mb=N`` -- keeps N more MiB alive (touched, so resident) in this process, then
  answers ``<pid> <resident bytes>``; ``/rss`` only answers that;
* ``/errors?text=...`` -- writes ``text`` and a newline to ``wsgi.errors``.

At import time, when ``WORKERS_APPS_IMPORT_LOG`` names a file, the importing process
appends its pid to it (one line per import), so that ``--preload`` can be checked; and
``WORKERS_APPS_IMPORT_DELAY`` (seconds) makes the import slow, so that a test can signal
a worker while it boots.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]

#: What ``/grow`` keeps alive.
_BALLAST: list[bytes] = []


def _record_import() -> None:
    path = os.environ.get("WORKERS_APPS_IMPORT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
    delay = float(os.environ.get("WORKERS_APPS_IMPORT_DELAY") or 0)
    if delay:
        time.sleep(delay)


_record_import()


def resident_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process, from ``/proc/<pid>/statm``."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def wsgiloop_test_stuck_forever() -> None:
    """Never returns (without burning a core): the stuck application."""
    while True:
        time.sleep(0.05)


def _query(environ: dict) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _text(start_response: StartResponse, text: str) -> list[bytes]:
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict, start_response: StartResponse) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    query = _query(environ)
    pid = os.getpid()
    if path == "/slow":
        seconds = float(query.get("s", 3))
        time.sleep(seconds)
        return _text(start_response, f"{pid} slept {seconds:g}")
    if path == "/stuck":
        wsgiloop_test_stuck_forever()
    if path == "/grow":
        mib = int(query.get("mb", 32))
        _BALLAST.append(b"\x01" * (mib << 20))
        return _text(start_response, f"{pid} {resident_bytes()}")
    if path == "/rss":
        return _text(start_response, f"{pid} {resident_bytes()}")
    if path == "/errors":
        stream = environ["wsgi.errors"]
        stream.write(query.get("text", "hello from wsgi.errors") + "\n")
        stream.flush()
        return _text(start_response, f"{pid} wrote")
    return _text(start_response, str(pid))


def broken_factory() -> Any:
    """An application factory that fails (``workers_apps:broken_factory()``)."""
    raise RuntimeError("broken_factory refuses to build an application")
