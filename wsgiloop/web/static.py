"""Static files: :class:`StaticFileHandler` and the checks it relies on.

Promises:

* no way out of the root: a path with a ``..`` segment, a backslash or NUL, or a request
  target whose path has an encoded slash or backslash (``%2F``, ``%5C``) is refused
  (403 or 404); the file is located with every symlink resolved and must lie inside the
  resolved root (403 otherwise); only regular files are served (404);
* GET sends the file with ``sendfile`` (through ``responder.write_file``) after a head
  with its Content-Length; HEAD sends the same head and no body;
* ``ETag`` (from size and mtime) with ``If-None-Match`` and ``Last-Modified`` with
  ``If-Modified-Since`` give 304; a single ``Range: bytes=a-b | a- | -n`` gives 206 with
  ``Content-Range`` (honouring ``If-Range``), an unsatisfiable one 416 with
  ``Content-Range: bytes */size``; several ranges or a malformed header get the whole
  file (RFC 9110 lets a server ignore Range);
* a directory is 404 unless ``default_filename`` names its index file.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import os
import stat

from .errors import HTTPError
from .handler import RequestHandler
from .httputil import etag_matches

__all__ = ["UNSATISFIABLE", "StaticFileHandler", "parse_range", "resolve_static_path"]

#: :func:`parse_range`'s answer for a range that lies outside the file.
UNSATISFIABLE = "unsatisfiable"

_ENCODINGS = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
              "xz": "application/x-xz", "br": "application/x-brotli"}
_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def resolve_static_path(root: str, url_path: str, raw_path: str = "") -> str:
    """The real path of ``url_path`` (decoded, relative) under the real path ``root``.

    ``raw_path`` is the request target's path as sent, checked for encoded slashes.
    Raises HTTPError 403 or 404 for anything that could leave the root.
    """
    lowered = raw_path.lower()
    if "%2f" in lowered or "%5c" in lowered or "%00" in lowered:
        raise HTTPError(404, "encoded slash or NUL in %r", raw_path)
    if "\x00" in url_path:
        raise HTTPError(404, "NUL in a static path")
    segments = url_path.split("/")
    if ".." in segments or "\\" in url_path:
        raise HTTPError(403, "%r tries to leave the static root", url_path)
    parts = [s for s in segments if s and s != "."]
    real = os.path.realpath(os.path.join(root, *parts))
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise HTTPError(403, "%r resolves outside the static root", url_path)
    return real


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """A ``Range`` value -> ``(first, last)`` byte positions (inclusive), or
    :data:`UNSATISFIABLE`, or None to ignore it (absent, malformed, several ranges)."""
    if not header:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, sep, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not sep or not (first_text or last_text):
        return None
    if (first_text and not (first_text.isdigit() and first_text.isascii())) or \
            (last_text and not (last_text.isdigit() and last_text.isascii())):
        return None
    if not first_text:  # the last n bytes
        count = int(last_text)
        if count == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - count), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def content_type_for(path: str) -> str:
    kind, encoding = mimetypes.guess_type(path)
    if encoding:
        return _ENCODINGS.get(encoding, "application/octet-stream")
    return kind or "application/octet-stream"


def file_etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


class StaticFileHandler(RequestHandler):
    """Serves files under ``path`` for GET and HEAD; the route's group is the file path.

    Rule keyword arguments: ``path`` (the root directory) and ``default_filename`` (the
    index file of a directory, e.g. ``index.html``; None: directories are 404).
    A request with a ``v`` query argument (from :meth:`Application.static_url`) is
    cached by the client for a year.
    """

    SUPPORTED_METHODS = ("GET", "HEAD", "OPTIONS")
    CACHE_MAX_AGE = 365 * 86400

    def initialize(self, path: str, default_filename: str | None = None,  # type: ignore[override]
                   max_age: int | None = None) -> None:
        """``max_age``: send ``Cache-Control: public, max-age=N`` with every file (not
        only with versioned ``?v=`` URLs, which are cached for a year)."""
        self.root = os.path.realpath(os.path.abspath(path))
        self.default_filename = default_filename
        self.max_age = max_age

    def get(self, path: str, include_body: bool = True) -> None:
        real = resolve_static_path(self.root, path, self.request.path)
        if os.path.isdir(real):
            if not self.default_filename:
                raise HTTPError(404)
            if not self.request.path.endswith("/"):
                query = f"?{self.request.query}" if self.request.query else ""
                self.redirect(self.request.path + "/" + query, status=301)
                return
            real = resolve_static_path(self.root, f"{path}/{self.default_filename}")
        try:
            fd = os.open(real, _O_FLAGS)
        except FileNotFoundError:
            raise HTTPError(404) from None
        except (PermissionError, IsADirectoryError):
            raise HTTPError(403) from None
        except OSError as exc:  # ELOOP: swapped for a symlink since resolving
            raise HTTPError(404, "cannot open %s: %s", real, exc) from None
        file = _OpenFile(fd)
        try:
            self._serve(file, os.fstat(fd), real, include_body)
        except BaseException:
            file.close()
            raise

    def head(self, path: str) -> None:
        self.get(path, include_body=False)

    def _serve(self, file: _OpenFile, st: os.stat_result, real: str, include_body: bool) -> None:
        """Answer from the open ``file``, closing it once it is no longer needed."""
        if not stat.S_ISREG(st.st_mode):
            raise HTTPError(404)
        size = st.st_size
        etag = file_etag(st)
        modified = int(st.st_mtime)
        self.set_header("ETag", etag)
        self.set_header("Last-Modified", email.utils.formatdate(modified, usegmt=True))
        self.set_header("Accept-Ranges", "bytes")
        if "v" in self.request.query_arguments:
            self.set_header("Cache-Control", f"public, max-age={self.CACHE_MAX_AGE}")
        elif self.max_age is not None:
            self.set_header("Cache-Control", f"public, max-age={self.max_age}")
        if self._not_modified(etag, modified):
            file.close()
            self.set_status(304)
            return
        self.set_header("Content-Type", content_type_for(real))
        wanted = parse_range(self.request.headers.get("Range"), size) \
            if self._range_applies(etag, modified) else None
        if wanted == UNSATISFIABLE:
            file.close()
            self.set_status(416)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.set_header("Content-Range", f"bytes */{size}")
            return
        if wanted is not None:
            first, last = wanted  # type: ignore[misc]
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {first}-{last}/{size}")
        else:
            first, last = 0, size - 1
        count = last - first + 1
        self.set_header("Content-Length", str(count))
        if not include_body or count <= 0 or self.closed:
            file.close()
            return
        self._send_file(file, first, count)

    def _send_file(self, file: _OpenFile, offset: int, count: int) -> None:
        """Head now, then the bytes with sendfile; finish once they reached the socket."""
        responder = self._responder

        def sent() -> None:
            file.close()
            if not self._finished:
                self.finish()

        self._write_headers()
        self._auto_finish = False
        responder.on_abort(file.close)
        responder.write_file(file.fd, offset, count)
        responder.when_flushed(sent)

    def _not_modified(self, etag: str, modified: int) -> bool:
        headers = self.request.headers
        condition = headers.get("If-None-Match")
        if condition is not None:
            return etag_matches(condition, etag)
        since = headers.get("If-Modified-Since")
        if since is not None:
            when = _parse_http_date(since)
            return when is not None and modified <= when
        return False

    def _range_applies(self, etag: str, modified: int) -> bool:
        """If-Range: the Range holds only for the current representation."""
        condition = self.request.headers.get("If-Range")
        if condition is None:
            return True
        condition = condition.strip()
        if condition.startswith('"'):
            return condition == etag  # strong comparison
        if condition.startswith("W/"):
            return False
        return _parse_http_date(condition) == modified

    @classmethod
    def get_version(cls, root: str, path: str) -> str | None:
        """A short tag that changes when the file does (None if there is no such file)."""
        try:
            real = resolve_static_path(os.path.realpath(root), path)
            st = os.stat(real)
        except (HTTPError, OSError):
            return None
        return hashlib.sha256(file_etag(st).encode()).hexdigest()[:12]


class _OpenFile:
    """A file descriptor closed at most once, whoever asks first."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def _parse_http_date(text: str) -> int | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    try:
        return int(parsed.timestamp())
    except (OverflowError, ValueError, OSError):
        return None
