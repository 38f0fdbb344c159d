"""HTTP data helpers for the native handlers: header maps, form bodies, cookies.

Promises:

* :class:`Headers` is case-insensitive, keeps every value of a repeated field, and
  refuses values with CR, LF or NUL (no header injection through it);
* :func:`parse_query` and :func:`parse_body_arguments` decode UTF-8 strictly and raise
  :class:`FormError` on malformed input; nothing here raises anything else for bad
  client data;
* :func:`parse_multipart` is a plain ``multipart/form-data`` reader (RFC 7578) that
  needs no ``cgi`` module: it handles quoted and RFC 5987 (``filename*``) parameters,
  preambles and epilogues, and bounds the number of parts;
* :func:`parse_cookie_header` is lenient (a malformed pair is skipped, not fatal) and
  :func:`format_set_cookie` strict (a name or value that would break the header raises
  ValueError).
"""

from __future__ import annotations

import datetime
import email.utils
import re
import time
from collections.abc import Iterable, Iterator, MutableMapping
from itertools import chain
from typing import Any
from urllib.parse import parse_qsl, unquote

MAX_MULTIPART_PARTS = 1000

_BAD_VALUE = re.compile(r"[\x00\r\n]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_COOKIE_VALUE = re.compile(r"[!#-+\--:<-\[\]-~]*")  # RFC 6265 cookie-octet
_chain = chain.from_iterable


class FormError(ValueError):
    """A request body or query string that cannot be parsed."""


class Headers(MutableMapping[str, str]):
    """Header fields by case-insensitive name, each name with one or more values.

    ``headers[name]`` joins a repeated field's values with ``", "``; :meth:`get_list`
    gives them apart; :meth:`add` appends a value, ``headers[name] = value`` replaces all
    of them; :meth:`get_all` yields every ``(name, value)`` pair, in the order the names
    first appeared.
    """

    __slots__ = ("_fields",)

    # name.lower() -> the field's (name, value) pairs, the name as first given.

    def __init__(self, pairs: Iterable[tuple[str, str]] | None = None) -> None:
        self._fields: dict[str, list[tuple[str, str]]] = {}
        if pairs:
            if type(self) is not Headers:  # a subclass may have its own add()
                for name, value in pairs:
                    self.add(name, value)
                return
            fields = self._fields
            for name, value in pairs:
                if type(value) is not str or not value.isprintable():
                    self._check(name, value)
                key = name.lower()
                entry = fields.get(key)
                if entry is None:
                    fields[key] = [(name, value)]
                else:
                    entry.append((entry[0][0], value))

    @staticmethod
    def _check(name: str, value: str) -> str:
        if not isinstance(value, str):
            raise TypeError(f"header {name!r}: value must be a str, not {type(value).__name__}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r}: CR, LF or NUL in the value")
        return value

    def add(self, name: str, value: str) -> None:
        if type(value) is not str or not value.isprintable():
            self._check(name, value)
        key = name.lower()
        entry = self._fields.get(key)
        if entry is None:
            self._fields[key] = [(name, value)]
        else:
            entry.append((entry[0][0], value))

    def get_list(self, name: str) -> list[str]:
        entry = self._fields.get(name.lower())
        return [value for _, value in entry] if entry is not None else []

    def get_all(self) -> Iterator[tuple[str, str]]:
        return _chain(self._fields.values())

    def __getitem__(self, name: str) -> str:
        entry = self._fields[name.lower()]
        return entry[0][1] if len(entry) == 1 else ", ".join([value for _, value in entry])

    def __setitem__(self, name: str, value: str) -> None:
        if type(value) is not str or not value.isprintable():
            self._check(name, value)
        self._fields[name.lower()] = [(name, value)]

    def __delitem__(self, name: str) -> None:
        del self._fields[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        entry = self._fields.get(name.lower())
        if entry is None:
            return default
        return entry[0][1] if len(entry) == 1 else ", ".join([value for _, value in entry])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return (entry[0][0] for entry in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def copy(self) -> Headers:
        return Headers(self.get_all())

    def __repr__(self) -> str:
        return f"Headers({list(self.get_all())!r})"


# -- forms -------------------------------------------------------------------------------------

def parse_query(text: str) -> dict[str, list[str]]:
    """``a=1&a=2&b=`` -> ``{"a": ["1", "2"], "b": [""]}`` (blank values kept).

    Raises :class:`FormError` for bytes that are not UTF-8.
    """
    result: dict[str, list[str]] = {}
    if not text:
        return result
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=None)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"malformed query or form data: {exc}") from None
    for name, value in pairs:
        result.setdefault(name, []).append(value)
    return result


class UploadedFile(dict):  # type: ignore[type-arg]
    """One file from a ``multipart/form-data`` body: a dict with the keys ``filename``,
    ``content_type`` and ``body`` (bytes), also readable as attributes."""

    def __init__(self, filename: str, content_type: str, body: bytes) -> None:
        super().__init__(filename=filename, content_type=content_type, body=body)

    @property
    def filename(self) -> str:
        return self["filename"]

    @property
    def content_type(self) -> str:
        return self["content_type"]

    @property
    def body(self) -> bytes:
        return self["body"]


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="a"; filename*=UTF-8''%C3%A9`` -> ``("form-data", {...})``.

    Keys are lower-cased; quoted values are unescaped; an RFC 5987 ``key*`` value is
    decoded and stored under ``key`` (it wins over the plain one).
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        start = i
        while i < n and rest[i] not in "=;":
            i += 1
        key = rest[start:i].strip().lower()
        if i >= n or rest[i] == ";":
            continue  # a bare word: no value
        i += 1  # "="
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1  # closing quote
            val = "".join(chars)
        else:
            start = i
            while i < n and rest[i] != ";":
                i += 1
            val = rest[start:i].strip()
        if not key:
            continue
        if key.endswith("*"):
            charset, _, encoded = val.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                extended[key[:-1]] = unquote(encoded, encoding=charset or "utf-8",
                                             errors="strict")
            except (LookupError, UnicodeDecodeError):
                continue
        else:
            params[key] = val
    params.update(extended)
    return main.strip().lower(), params


def parse_multipart(body: bytes, boundary: str
                    ) -> tuple[dict[str, list[str]], dict[str, list[UploadedFile]]]:
    """Split a ``multipart/form-data`` body into fields and files.

    A part with a ``filename`` parameter is a file (kept as bytes), any other part a
    field (decoded as UTF-8).  Raises :class:`FormError` for a body that does not follow
    the format, has no closing boundary, or has more than ``MAX_MULTIPART_PARTS`` parts.
    """
    if not boundary or len(boundary) > 200:
        raise FormError("missing or invalid multipart boundary")
    try:
        bbytes = boundary.encode("latin-1")
    except UnicodeEncodeError:
        raise FormError("invalid multipart boundary") from None
    delimiter = b"\r\n--" + bbytes
    data = b"\r\n" + body  # so the first delimiter has the CRLF the others have
    pos = _find_delimiter(data, delimiter, 0)
    if pos < 0:
        raise FormError("multipart body without a boundary")
    fields: dict[str, list[str]] = {}
    files: dict[str, list[UploadedFile]] = {}
    parts = 0
    while True:
        pos += len(delimiter)
        if data.startswith(b"--", pos):
            return fields, files  # the close delimiter; the rest is an epilogue
        part_start = data.find(b"\r\n", pos) + 2
        next_pos = _find_delimiter(data, delimiter, part_start)
        if next_pos < 0:
            raise FormError("multipart body without a closing boundary")
        parts += 1
        if parts > MAX_MULTIPART_PARTS:
            raise FormError("too many multipart parts")
        _add_part(data[part_start:next_pos], fields, files)
        pos = next_pos


def _find_delimiter(data: bytes, delimiter: bytes, start: int) -> int:
    """Where the next delimiter line starts: CRLF, ``--boundary``, then ``--`` or
    optional blanks and CRLF (the boundary followed by anything else is content)."""
    while True:
        pos = data.find(delimiter, start)
        if pos < 0:
            return -1
        after = pos + len(delimiter)
        if data.startswith(b"--", after):
            return pos
        line_end = data.find(b"\r\n", after)
        if line_end >= 0 and not data[after:line_end].strip(b" \t"):
            return pos
        start = pos + 1


def _add_part(part: bytes, fields: dict[str, list[str]],
              files: dict[str, list[UploadedFile]]) -> None:
    if part.startswith(b"\r\n"):
        head, content = b"", part[2:]
    else:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise FormError("multipart part without a header end")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise FormError("malformed multipart part header")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8",
                                                                             "replace")
    disposition, params = parse_header_params(headers.get("content-disposition", ""))
    if disposition != "form-data" or "name" not in params:
        return  # not a form field; ignored as RFC 7578 allows
    name = params["name"]
    if "filename" in params:
        content_type = headers.get("content-type", "application/octet-stream")
        files.setdefault(name, []).append(UploadedFile(params["filename"], content_type,
                                                       content))
        return
    try:
        fields.setdefault(name, []).append(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise FormError(f"form field {name!r} is not UTF-8") from None


def parse_body_arguments(content_type: str, body: bytes
                         ) -> tuple[dict[str, list[str]], dict[str, list[UploadedFile]]]:
    """Fields and files of a form body by its Content-Type; ``({}, {})`` for others."""
    kind, params = parse_header_params(content_type or "")
    if kind == "application/x-www-form-urlencoded":
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise FormError("a urlencoded body must be ASCII") from None
        return parse_query(text), {}
    if kind == "multipart/form-data":
        return parse_multipart(body, params.get("boundary", ""))
    return {}, {}


# -- cookies -----------------------------------------------------------------------------------

def parse_cookie_header(values: Iterable[str]) -> dict[str, str]:
    """Cookie header values -> ``{name: value}``; the first of a repeated name wins (the
    most specific path, in browsers' order); quoted values are unquoted."""
    cookies: dict[str, str] = {}
    for header in values:
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or not name or not _TOKEN.fullmatch(name):
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


def format_set_cookie(name: str, value: str, *, path: str | None = "/",
                      domain: str | None = None, expires: float | datetime.datetime | None = None,
                      max_age: int | None = None, secure: bool = False, httponly: bool = False,
                      samesite: str | None = None) -> str:
    """The value of one ``Set-Cookie`` field.  ``expires`` is a POSIX time or datetime.

    Raises ValueError for a name that is not a token, a value outside the RFC 6265
    cookie-octets, an attribute with ``;`` or a control character, or a bad SameSite.
    """
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid cookie name {name!r}")
    if not _COOKIE_VALUE.fullmatch(value):
        raise ValueError(f"invalid cookie value {value!r} (quote or encode it first)")
    parts = [f"{name}={value}"]
    for attr, text in (("Domain", domain), ("Path", path)):
        if text is not None:
            if ";" in text or re.search(r"[\x00-\x1f\x7f]", text):
                raise ValueError(f"invalid cookie {attr} {text!r}")
            parts.append(f"{attr}={text}")
    if expires is not None:
        if isinstance(expires, datetime.datetime):
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=datetime.timezone.utc)
            expires = expires.timestamp()
        parts.append("Expires=" + email.utils.formatdate(expires, usegmt=True))
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        canonical = {"strict": "Strict", "lax": "Lax", "none": "None"}.get(samesite.lower())
        if canonical is None:
            raise ValueError(f"SameSite must be Strict, Lax or None, not {samesite!r}")
        parts.append(f"SameSite={canonical}")
    return "; ".join(parts)


def expires_in_days(days: float) -> float:
    """The POSIX time ``days`` from now (for cookie expiry)."""
    return time.time() + days * 86400


def etag_matches(condition: str, etag: str) -> bool:
    """Weak comparison of an ``If-None-Match`` value against ``etag`` (``*`` matches)."""
    condition = condition.strip()
    if condition == "*":
        return True
    wanted = etag[2:] if etag.startswith("W/") else etag
    for candidate in condition.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == wanted:
            return True
    return False
