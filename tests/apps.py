"""WSGI applications for the end-to-end tests (``tests/test_e2e_*.py``).

``app`` routes on the first segment of ``PATH_INFO`` (after an optional ``/raw``); any path
that names no route answers with the environ as JSON.  ``validated_app`` is ``app`` behind
:func:`wsgiref.validate.validator`, so a PEP 3333 violation by the server raises there (a
500 or a cut connection the tests notice) or is printed to the server's stderr ("Iterator
garbage collected without being closed", "WSGIWarning").  ``combined`` -- what the tests
serve -- sends ``/raw/...`` to the bare ``app`` (for what the validator would stop before
the server sees it: invalid statuses and headers, ``read()`` without a size, and the
``sendfile`` path of ``wsgi.file_wrapper``) and everything else to ``validated_app``.

``CLOSE_LOG`` records the tag of every :class:`Tracked` iterable whose ``close()`` ran;
``/closes`` returns it as JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import validator

StartResponse = Callable[..., Any]

CLOSE_LOG: list[str] = []

TEXT = [("Content-Type", "text/plain")]
JSON = [("Content-Type", "application/json")]


def pattern(size: int) -> bytes:
    """``size`` bytes of a repeating, position-dependent pattern (not all one byte)."""
    block = bytes(range(256)) * 256  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def _query(environ: dict) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _int(query: dict[str, str], name: str, default: int) -> int:
    return int(query.get(name, default))


def _json(start_response: StartResponse, data: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data, sort_keys=True).encode()
    start_response(status, JSON + [("Content-Length", str(len(body)))])
    return [body]


class Tracked:
    """An iterable over ``chunks`` that records ``close()`` in :data:`CLOSE_LOG`.

    With ``fail_after`` set, raises RuntimeError after that many chunks.
    """

    def __init__(self, tag: str, chunks: Iterable[bytes], fail_after: int | None = None,
                 start: Callable[[], Any] | None = None) -> None:
        self.tag = tag
        self.chunks = chunks
        self.fail_after = fail_after
        self.start = start

    def __iter__(self) -> Iterator[bytes]:
        if self.start is not None:
            self.start()
        for index, chunk in enumerate(self.chunks):
            if self.fail_after is not None and index >= self.fail_after:
                raise RuntimeError(f"tracked iterable {self.tag} failed on purpose")
            yield chunk

    def close(self) -> None:
        CLOSE_LOG.append(self.tag)


# -- routes ------------------------------------------------------------------------------


def environ_app(environ: dict, start_response: StartResponse) -> list[bytes]:
    """The environ as JSON: plain values as they are, other objects by type name."""
    data: dict[str, Any] = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int, float)) or value is None:
            data[key] = value
        elif isinstance(value, tuple):
            data[key] = list(value)
        else:
            data[key] = "<" + type(value).__name__ + ">"
    return _json(start_response, data)


def echo(environ: dict, start_response: StartResponse) -> list[bytes]:
    """The request body back, with what the environ said about it in headers."""
    inp = environ["wsgi.input"]
    parts = []
    while True:
        block = inp.read(65536)
        if not block:
            break
        parts.append(block)
    body = b"".join(parts)
    start_response("200 OK", [
        ("Content-Type", "application/octet-stream"),
        ("Content-Length", str(len(body))),
        ("X-Content-Length", environ.get("CONTENT_LENGTH", "<missing>")),
        ("X-Content-Type", environ.get("CONTENT_TYPE", "<missing>")),
        ("X-Method", environ["REQUEST_METHOD"]),
    ])
    return [body]


def digest(environ: dict, start_response: StartResponse) -> list[bytes]:
    """sha256 and length of the body, read in 64 KiB blocks."""
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    length = 0
    while True:
        block = inp.read(65536)
        if not block:
            break
        h.update(block)
        length += len(block)
    return _json(start_response, {"sha256": h.hexdigest(), "length": length,
                                  "content_length": environ.get("CONTENT_LENGTH"),
                                  "input": type(environ["wsgi.input"]).__name__})


def input_modes(environ: dict, start_response: StartResponse) -> list[bytes]:
    """Read the body the way ``?mode=`` says; the pieces, latin-1 decoded, as JSON."""
    query = _query(environ)
    mode = query.get("mode", "read_n")
    inp = environ["wsgi.input"]
    n = _int(query, "n", 4)
    pieces: list[bytes]
    if mode == "read_all":
        pieces = [inp.read()]
    elif mode == "read_n":
        pieces = []
        while True:
            block = inp.read(n)
            if not block:
                break
            pieces.append(block)
        pieces.append(inp.read(n))  # at the end: b""
    elif mode == "readline":
        pieces = []
        while True:
            line = inp.readline()
            pieces.append(line)
            if not line:
                break
    elif mode == "readline_size":
        pieces = []
        while True:
            line = inp.readline(n)
            pieces.append(line)
            if not line:
                break
    elif mode == "readlines":
        pieces = inp.readlines()
    elif mode == "iter":
        pieces = list(inp)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return _json(start_response, [p.decode("latin-1") for p in pieces])


def ignore_body(environ: dict, start_response: StartResponse) -> list[bytes]:
    body = b"ignored the body\n"
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def fixed(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """``n`` bytes of :func:`pattern` with a Content-Length, yielded in 3 pieces."""
    n = _int(_query(environ), "n", 1000)
    body = pattern(n)
    start_response("200 OK", TEXT + [("Content-Length", str(n))])
    third = n // 3
    return iter([body[:third], body[third:2 * third], body[2 * third:]])


def stream(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """``count`` chunks of ``size`` pattern bytes, with no Content-Length."""
    query = _query(environ)
    count, size = _int(query, "count", 3), _int(query, "size", 10)
    start_response("200 OK", TEXT)
    chunk = pattern(size)
    return (chunk for _ in range(count))


def status(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """Status ``code`` (204, 304, ...) and a body the server must not send for it."""
    code = _int(_query(environ), "code", 204)
    headers = [] if code in (204, 304) else list(TEXT)
    start_response(f"{code} Whatever", headers)
    return iter([b"this body ", b"must not be sent"])


def late_start(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """A generator that calls start_response only when first iterated."""
    start_response("201 Created Late", TEXT + [("X-Late", "yes")])
    yield b"late "
    yield b"start"


def write_callable(environ: dict, start_response: StartResponse) -> list[bytes]:
    """Body through the write() callable, then the rest through the iterable."""
    headers = list(TEXT)
    if "cl" in _query(environ):
        headers.append(("Content-Length", "17"))
    write = start_response("200 OK", headers)
    write(b"part1-")
    write(b"part2-")
    return [b"part3"]


def exc_info_replace(environ: dict, start_response: StartResponse) -> list[bytes]:
    """start_response, then an error before any body: exc_info replaces the status."""
    start_response("200 OK", TEXT)
    try:
        raise ValueError("replaced before the head was sent")
    except ValueError:
        start_response("503 Replaced", TEXT + [("X-Replaced", "yes")], sys.exc_info())
    return [b"replacement body"]


def exc_info_late(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """exc_info after the head was sent: start_response must re-raise."""
    start_response("200 OK", TEXT)
    yield b"first part"
    try:
        raise ValueError("late failure marker")
    except ValueError:
        start_response("500 Too Late", TEXT, sys.exc_info())
    yield b"must never be sent"


def error_after_start(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", TEXT)
    yield b"partial body"
    raise RuntimeError("error after the response started")


def cl_long(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """Declares 100 bytes, sends 10."""
    start_response("200 OK", TEXT + [("Content-Length", "100")])
    return iter([b"0123456789"])


def cl_short(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
    """Declares 5 bytes, sends 16."""
    start_response("200 OK", TEXT + [("Content-Length", "5")])
    return iter([b"01234", b"56789ABCDEF"])


def tracked(environ: dict, start_response: StartResponse) -> Tracked:
    """A :class:`Tracked` iterable: ``count`` chunks of ``size`` bytes, tag ``tag``."""
    query = _query(environ)
    count, size = _int(query, "count", 3), _int(query, "size", 10)
    fail = query.get("fail")
    headers = list(TEXT)
    if "cl" in query:
        headers.append(("Content-Length", str(count * size)))
    chunk = pattern(size)
    return Tracked(query.get("tag", "untagged"), (chunk for _ in range(count)),
                   fail_after=int(fail) if fail is not None else None,
                   start=lambda: start_response("200 OK", headers))


def closes(environ: dict, start_response: StartResponse) -> list[bytes]:
    return _json(start_response, CLOSE_LOG)


def raise_error(environ: dict, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("kaboom-7d1e secret detail")


def errors_stream(environ: dict, start_response: StartResponse) -> list[bytes]:
    errors = environ["wsgi.errors"]
    errors.write("wsgi.errors marker 51f0\n")
    errors.flush()
    return ignore_body(environ, start_response)


def expect_read(environ: dict, start_response: StartResponse) -> list[bytes]:
    """Reads the body (so a 100-continue request gets its 100) and reports it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    return _json(start_response, {"received": body.decode("latin-1")})


def expect_reject(environ: dict, start_response: StartResponse) -> list[bytes]:
    """Answers 401 without touching the body."""
    body = b"authenticate first\n"
    start_response("401 Unauthorized", TEXT + [("Content-Length", str(len(body))),
                                              ("WWW-Authenticate", "Basic")])
    return [body]


def file_app(environ: dict, start_response: StartResponse) -> Any:
    """``wsgi.file_wrapper`` over the file ``?path=`` from offset ``?skip=``; ``?cl=1`` adds
    a Content-Length, ``?bytesio=1`` serves a copy in a BytesIO instead of the file."""
    query = _query(environ)
    f: Any = open(query["path"], "rb")
    if "bytesio" in query:  # a file-like object without a file descriptor
        with f:
            f = io.BytesIO(f.read())
    skip = _int(query, "skip", 0)
    headers = [("Content-Type", "application/octet-stream")]
    if "cl" in query:
        f.seek(0, 2)
        headers.append(("Content-Length", str(f.tell() - skip)))
    f.seek(skip)  # the response starts at the current position
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 65536)


def list_body(environ: dict, start_response: StartResponse) -> list[bytes]:
    """A one-item list without a Content-Length."""
    start_response("200 OK", list(TEXT))
    return [b"a list body"]


_BLOBS: dict[int, bytes] = {}


def blob(environ: dict, start_response: StartResponse) -> list[bytes]:
    """``n`` pattern bytes as a one-item list (the body object is cached per size)."""
    n = _int(_query(environ), "n", 1 << 20)
    body = _BLOBS.get(n)
    if body is None:
        body = _BLOBS[n] = pattern(n)
    start_response("200 OK", TEXT + [("Content-Length", str(n))])
    return [body]


def app_close(environ: dict, start_response: StartResponse) -> list[bytes]:
    """Asks for the connection to be closed after this response."""
    start_response("200 OK", TEXT + [("Content-Length", "6"), ("Connection", "close")])
    return [b"closed"]


def bad_status(environ: dict, start_response: StartResponse) -> list[bytes]:
    start_response("abc", list(TEXT))
    return [b"bad status"]


def bad_header_crlf(environ: dict, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT + [("X-Bad", "a\r\nX-Injected: yes")])
    return [b"header injection"]


def bad_header_latin1(environ: dict, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT + [("X-Bad", "euro \u20ac")])
    return [b"not latin-1"]


def bad_header_name(environ: dict, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", TEXT + [("X Bad", "space in the name")])
    return [b"bad name"]


def loaded_modules(environ: dict, start_response: StartResponse) -> list[bytes]:
    """``/modules?names=a,b``: the serving process's pid, and which of the modules it
    has imported (``sys.modules`` seen from inside the worker)."""
    names = _query(environ).get("names", "").split(",")
    return _json(start_response, {"pid": os.getpid(),
                                  "loaded": {name: name in sys.modules for name in names}})


ROUTES: dict[str, Callable[..., Any]] = {
    "environ": environ_app,
    "echo": echo,
    "digest": digest,
    "input": input_modes,
    "ignore-body": ignore_body,
    "fixed": fixed,
    "stream": stream,
    "status": status,
    "late": late_start,
    "write": write_callable,
    "exc-info-replace": exc_info_replace,
    "exc-info-late": exc_info_late,
    "error-after-start": error_after_start,
    "cl-long": cl_long,
    "cl-short": cl_short,
    "tracked": tracked,
    "closes": closes,
    "raise": raise_error,
    "errors": errors_stream,
    "expect-read": expect_read,
    "expect-reject": expect_reject,
    "file": file_app,
    "list": list_body,
    "blob": blob,
    "app-close": app_close,
    "bad-status": bad_status,
    "bad-header-crlf": bad_header_crlf,
    "bad-header-latin1": bad_header_latin1,
    "bad-header-name": bad_header_name,
    "modules": loaded_modules,
}


def _route(path: str) -> Callable[..., Any]:
    segments = path.split("/")
    name = segments[2] if len(segments) > 2 and segments[1] == "raw" else \
        segments[1] if len(segments) > 1 else ""
    return ROUTES.get(name, environ_app)


def app(environ: dict, start_response: StartResponse) -> Any:
    return _route(environ.get("PATH_INFO", ""))(environ, start_response)


validated_app = validator(app)


def combined(environ: dict, start_response: StartResponse) -> Any:
    """``/raw/...`` to the bare :func:`app`, everything else through the validator."""
    if environ.get("PATH_INFO", "").startswith("/raw/"):
        return app(environ, start_response)
    return validated_app(environ, start_response)


# -- for tests/test_spool.py and tests/test_worker_connections.py ------------------------


def _lowest_free_fd() -> int:
    import os

    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def limits_app(environ: dict, start_response: StartResponse) -> list[bytes]:
    """``/nofile``: lower this worker's soft RLIMIT_NOFILE to its lowest free descriptor
    number, so that the next file or socket it opens fails with a real EMFILE;
    ``/nofile-restore``: raise it back to the hard limit.  Anything else: the worker's
    pid, the body's length and sha256 as JSON."""
    import os
    import resource

    path = environ.get("PATH_INFO", "")
    if path in ("/nofile", "/nofile-restore"):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft = _lowest_free_fd() if path == "/nofile" else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        return _json(start_response, {"soft": soft, "hard": hard})
    h = hashlib.sha256()
    length = 0
    while block := environ["wsgi.input"].read(65536):
        h.update(block)
        length += len(block)
    return _json(start_response, {"pid": os.getpid(), "length": length,
                                  "sha256": h.hexdigest()})


# -- slow clients (tests/test_slow_clients.py) ---------------------------------------------------


def write_big(environ: dict, start_response: StartResponse) -> Tracked:
    """``count`` chunks of ``size`` bytes through the ``write()`` callable, then a
    :class:`Tracked` iterable (tag ``tag``) over nothing; if ``write()`` raises because
    the client has gone, ``tag`` and ``tag:write-raised`` go to :data:`CLOSE_LOG`."""
    query = _query(environ)
    count, size = _int(query, "count", 16), _int(query, "size", 65536)
    write = start_response("200 OK", TEXT + [("Content-Length", str(count * size))])
    chunk = pattern(size)
    try:
        for _ in range(count):
            write(chunk)
    except ConnectionAbortedError:  # the client has gone: heard of through write()
        tag = query.get("tag", "untagged")
        CLOSE_LOG.extend([tag, tag + ":write-raised"])
        raise
    return Tracked(query.get("tag", "untagged"), [])


ROUTES["write-big"] = write_big


def native_slow_application() -> Any:
    """A native application: ``/big?n=MiB&tag=T`` streams with back-pressure and records
    ``T`` in :data:`CLOSE_LOG` when it hears the client is gone; ``/closes`` reports it."""
    from wsgiloop.web import Application, RequestHandler

    class Big(RequestHandler):
        async def get(self) -> None:
            block = pattern(1 << 16)
            self.set_header("Content-Length", str(int(self.get_argument("n")) << 20))
            for _ in range(int(self.get_argument("n")) * 16):
                self.write(block)
                await self.flush()

        def on_connection_close(self) -> None:
            CLOSE_LOG.append(self.get_argument("tag"))

    class Closes(RequestHandler):
        def get(self) -> None:
            self.write(json.dumps(CLOSE_LOG))

    return Application([("/big", Big), ("/closes", Closes)])


def request_echo(environ: dict, start_response: StartResponse) -> list[bytes]:
    """What the request said, as JSON: method, path, query, the ``HTTP_*`` keys,
    CONTENT_TYPE, CONTENT_LENGTH and the body (latin-1).  Nothing that differs from one
    connection or process to another, so two servers can be compared byte for byte."""
    inp = environ["wsgi.input"]
    body = b"".join(iter(lambda: inp.read(65536), b""))
    data = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    data.update(method=environ["REQUEST_METHOD"], path=environ.get("PATH_INFO", ""),
                query=environ.get("QUERY_STRING", ""),
                content_type=environ.get("CONTENT_TYPE", ""),
                content_length=environ.get("CONTENT_LENGTH", ""),
                body=body.decode("latin-1"))
    return _json(start_response, data)
