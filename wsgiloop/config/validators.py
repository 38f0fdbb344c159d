"""Validators: each takes the text of one value and returns the Python value, or raises
``ValueError`` with a short reason ("expected an integer >= 1")."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from ..logformat import parse_syslog_address

Validator = Callable[[str], Any]

_INT = re.compile(r"[0-9]+")
_SIZE = re.compile(r"([0-9]+)([kmg]?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def integer(minimum: int = 0) -> Validator:
    def validate(text: str) -> int:
        text = text.strip()
        if not _INT.fullmatch(text):
            raise ValueError(f"expected an integer >= {minimum}")
        value = int(text)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value
    return validate


def size(minimum: int = 0) -> Validator:
    def validate(text: str) -> int:
        m = _SIZE.fullmatch(text.strip())
        if not m:
            raise ValueError("expected a size in bytes, optionally with a k, m or g suffix")
        value = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value
    return validate


def seconds(allow_zero: bool = True) -> Validator:
    def validate(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("expected a number of seconds")
        if not math.isfinite(value) or value < 0:
            raise ValueError("expected a finite number of seconds >= 0")
        if value == 0 and not allow_zero:
            raise ValueError("must be greater than 0")
        return value
    return validate


def choice(choices: Sequence[str]) -> Validator:
    def validate(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return value
    return validate


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def umask(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text, 8)
    except ValueError:
        raise ValueError("expected an octal umask such as 022")
    if not 0 <= value <= 0o777:
        raise ValueError("expected an octal umask between 000 and 777")
    return value


def optional_name(text: str) -> str | None:
    """A user or group name or number; empty means "do not change"."""
    return text.strip() or None


def static_mapping(text: str) -> str:
    prefix, eq, directory = text.partition("=")
    if not eq or not prefix.startswith("/") or not directory:
        raise ValueError("expected PREFIX=DIR, e.g. /static=./staticfiles")
    return f"{prefix.rstrip('/') or '/'}={directory}"


def proxy_list(text: str) -> str:
    import ipaddress

    for item in (i.strip() for i in text.split(",")):
        if item in ("", "*", "unix"):
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an address, a network, 'unix' or '*'")
    return text.strip()


def reload_engine(text: str) -> str:
    engine = choice(("auto", "poll", "inotify"))(text)
    if engine == "inotify" and importlib.util.find_spec("watchfiles") is None:
        raise ValueError("'inotify' needs the watchfiles package (pip install watchfiles)")
    return engine


def parser_backend(text: str) -> str:
    backend = choice(("auto", "python", "httptools"))(text)
    if backend == "httptools":
        try:
            importlib.import_module("httptools")
        except ImportError:
            raise ValueError("'httptools' needs the httptools package "
                             "(pip install 'wsgiloop[fast]')")
    return backend


def path(text: str) -> str:
    if not text:
        raise ValueError("a file name is needed")
    return text


_HOOK_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def hook_spec(text: str) -> str | None:
    """A hook named on the command line or in the environment: ``module:function``."""
    text = text.strip()
    if not text:
        return None
    if not _HOOK_SPEC.fullmatch(text):
        raise ValueError("expected MODULE:FUNCTION")
    return text


def ciphers(text: str) -> str | None:
    import ssl

    if not text.strip():
        return None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(text.strip())
    except ssl.SSLError:
        raise ValueError("OpenSSL selects no cipher from this list") from None
    return text.strip()


def cert_reqs(text: str) -> int | None:
    """gunicorn's cert_reqs: 0, 1 or 2 (``ssl.CERT_NONE``/``OPTIONAL``/``REQUIRED``)."""
    text = text.strip()
    if not text:
        return None
    if text not in ("0", "1", "2"):
        raise ValueError("expected 0 (none), 1 (optional) or 2 (required)")
    return int(text)


def optional_path(text: str) -> str | None:
    """A file or directory path; the empty string means "none"."""
    return text or None


def path_list(text: str) -> list[str] | None:
    """Comma-separated directories; empty means "none"."""
    paths = [part.strip() for part in text.split(",") if part.strip()]
    return paths or None


_ENV_NAME = re.compile(r"[^=\x00]+")


def raw_env(text: str) -> str:
    """``KEY=VALUE``, as gunicorn's ``-e``."""
    key, sep, value = text.partition("=")
    if not sep or not _ENV_NAME.fullmatch(key.strip()):
        raise ValueError("expected KEY=VALUE")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return f"{key.strip()}={value}"


def env_words(text: str) -> list[str]:
    """Split an environment value like a shell does (for values that may hold spaces)."""
    try:
        return shlex.split(text)
    except ValueError as e:
        raise ValueError(f"cannot split it like a shell does ({e})")


def log_target(text: str) -> str:
    if not text:
        raise ValueError("expected '-' or a file path")
    return text


SYSLOG_FACILITIES = ("auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail",
                     "news", "security", "syslog", "user", "uucp", *(f"local{i}" for i in
                                                                     range(8)))


def syslog_address(text: str) -> str:
    """``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``unix://PATH[#dgram|#stream]``."""
    text = text.strip()
    parse_syslog_address(text)
    return text


def log_config_dict(text: str) -> dict[str, Any] | None:
    """A logging dictConfig as JSON text (a Python config file gives the dict itself);
    empty means none."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError(f"not JSON ({e})")
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object (a logging dictConfig)")
    return value or None


def app_spec(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("expected module:app")
    return text


def root_path(text: str) -> str:
    if text and (not text.startswith("/") or text.endswith("/")):
        raise ValueError("must be empty or start with '/' and not end with '/'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("must not contain control characters")
    return text


def header_value(text: str) -> str:
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
        raise ValueError("must not contain control characters")
    if not text.isascii():
        raise ValueError("must be ASCII")
    return text.strip()


class _AnyAtom(dict):
    """Answers every ``%(atom)s`` lookup, to try an access log format."""

    def __missing__(self, key: str) -> str:
        return "-"


def access_log_format(text: str) -> str:
    if re.search(r"%(?!\()", text.replace("%%", "")):
        raise ValueError("not a valid %-format (every conversion must name an atom, "
                         "as in %(h)s; write %% for a literal %)")
    try:
        text % _AnyAtom()
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"not a valid %-format ({e})")
    return text


def bind(text: str) -> str:
    from ..netutil import BindError, parse_bind

    try:
        parse_bind(text)
    except BindError as e:
        raise ValueError(str(e))
    return text.strip()


def optional_bind(text: str) -> str | None:
    """One bind address (not fd://), or empty for none."""
    if not text.strip():
        return None
    if text.strip().startswith("fd://"):
        raise ValueError("give HOST:PORT or unix:PATH (an inherited fd:// is not taken)")
    return bind(text)


def statsd_address(text: str) -> str | None:
    """gunicorn's statsd address: HOST:PORT, HOST, unix:PATH or unix://PATH; empty: none."""
    from ..metrics.statsd import parse_statsd_address

    if not text.strip():
        return None
    parse_statsd_address(text)
    return text.strip()


def dogstatsd_tags(text: str) -> str:
    """Comma-separated datadog tags (``tag1:value1,tag2``), sent as they are."""
    text = text.strip()
    if not text.isascii() or any(c in text for c in "|\n\r\t #@"):
        raise ValueError("ASCII tags separated by commas, without spaces, '|', '#' or '@'")
    return text
