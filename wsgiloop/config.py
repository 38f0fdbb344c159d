"""Settings: one table, from which the CLI, the environment and the docs all follow.

Promises this module keeps:

* Every setting is declared once, in :data:`SETTINGS`.  :func:`build_parser`, the
  environment reader and :func:`render_settings_doc` are all generated from that table,
  so a flag, its ``WSGILOOP_<NAME>`` variable and its documentation cannot drift apart.
* Precedence is defaults < environment < command line.  A repeatable setting (``bind``)
  given on the command line replaces, not extends, the environment's value.
* Values are validated here, not by argparse, and only the value that wins is checked.
  A bad value raises :class:`ConfigError` whose message is one line naming where the
  value came from (``--backlog`` or ``WSGILOOP_BACKLOG``).
* A :class:`Settings` is immutable; use :meth:`Settings.replace` to derive another.

``python -m wsgiloop.config > docs/settings.md`` regenerates the settings reference.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__

ENV_PREFIX = "WSGILOOP_"

# Section names, in the order they appear in --help and in docs/settings.md.
SECTIONS = ("Application", "Binding", "Workers", "Logging", "HTTP limits", "Timeouts",
            "Server")


class ConfigError(Exception):
    """A setting has a bad value; ``str(error)`` is one line fit to show the user."""


# ---------------------------------------------------------------------------------------
# Validators: each takes the text of a value and returns the Python value, or raises
# ValueError with a short reason ("expected a non-negative integer").
# ---------------------------------------------------------------------------------------

Validator = Callable[[str], Any]

_INT = re.compile(r"[0-9]+")
_SIZE = re.compile(r"([0-9]+)([kmg]?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _integer(minimum: int = 0) -> Validator:
    def validate(text: str) -> int:
        text = text.strip()
        if not _INT.fullmatch(text):
            raise ValueError(f"expected an integer >= {minimum}")
        value = int(text)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value
    return validate


def _size(minimum: int = 0) -> Validator:
    def validate(text: str) -> int:
        m = _SIZE.fullmatch(text.strip())
        if not m:
            raise ValueError("expected a size in bytes, optionally with a k, m or g suffix")
        value = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value
    return validate


def _seconds(allow_zero: bool = True) -> Validator:
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


def _choice(choices: Sequence[str]) -> Validator:
    def validate(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return value
    return validate


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false")


def _umask(text: str) -> int | None:
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


def _optional_name(text: str) -> str | None:
    """A user or group name or number; empty means "do not change"."""
    return text.strip() or None


def _proxy_list(text: str) -> str:
    import ipaddress

    for item in (i.strip() for i in text.split(",")):
        if item in ("", "*", "unix"):
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an address, a network, 'unix' or '*'")
    return text.strip()


def _optional_path(text: str) -> str | None:
    """A file or directory path; the empty string means "none"."""
    return text or None


def _log_target(text: str) -> str:
    if not text:
        raise ValueError("expected '-' or a file path")
    return text


def _app_spec(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("expected module:app")
    return text


def _root_path(text: str) -> str:
    if text and (not text.startswith("/") or text.endswith("/")):
        raise ValueError("must be empty or start with '/' and not end with '/'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("must not contain control characters")
    return text


def _header_value(text: str) -> str:
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
        raise ValueError("must not contain control characters")
    if not text.isascii():
        raise ValueError("must be ASCII")
    return text.strip()


class _AnyAtom(dict):
    """Answers every ``%(atom)s`` lookup, to try an access log format."""

    def __missing__(self, key: str) -> str:
        return "-"


def _access_log_format(text: str) -> str:
    if re.search(r"%(?!\()", text.replace("%%", "")):
        raise ValueError("not a valid %-format (every conversion must name an atom, "
                         "as in %(h)s; write %% for a literal %)")
    try:
        text % _AnyAtom()
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"not a valid %-format ({e})")
    return text


def _bind(text: str) -> str:
    from .netutil import BindError, parse_bind

    try:
        parse_bind(text)
    except BindError as e:
        raise ValueError(str(e))
    return text.strip()


# ---------------------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: how it is spelled on the command line and in the environment,
    how its text is checked and converted, and what the docs say about it.

    ``validate`` takes the text of one value (one occurrence, for an ``append``
    setting) and returns the Python value or raises ``ValueError`` with a short reason.
    ``default`` is the Python value; ``default_text`` overrides how it is shown.
    """

    name: str
    flags: tuple[str, ...]
    section: str
    default: Any
    validate: Validator
    help: str
    kind: str = "string"
    metavar: str | None = None
    append: bool = False
    aliases: tuple[str, ...] = ()
    default_text: str | None = None
    #: Extra value-less flags that set a fixed value, e.g. {"--native": "native"}.
    shortcuts: tuple[tuple[str, str], ...] = ()

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.append:
            return " ".join(str(v) for v in self.default)
        return str(self.default)


SETTINGS: list[Setting] = [
    # Application -----------------------------------------------------------------------
    Setting(
        "app", ("APP",), "Application", None, _app_spec, kind="app spec",
        help="The WSGI application to serve: 'module:app', 'package.module:attr.sub', "
             "'module:factory()' (called with no arguments) or 'module:factory(\"a\", "
             "debug=True)' (literal arguments); a bare 'module' means 'module:application', "
             "else 'module:app'.  The current directory (after --chdir) is on sys.path."),
    Setting(
        "interface", ("--interface",), "Application", "auto",
        _choice(("auto", "wsgi", "native")), kind="choice", metavar="KIND",
        shortcuts=(("--wsgi", "wsgi"), ("--native", "native")),
        help="How to serve APP: 'wsgi' (a PEP 3333 callable), 'native' (a "
             "wsgiloop.web.Application, on the event loop), or 'auto': native for an "
             "Application, WSGI for anything else."),
    Setting(
        "chdir", ("--chdir",), "Application", None, _optional_path, kind="path",
        metavar="DIR", default_text="none",
        help="Change to this directory before loading the application."),
    Setting(
        "root_path", ("--root-path",), "Application", "", _root_path, kind="url path",
        metavar="PATH", default_text='""',
        help="The URL prefix the application is mounted at, given to it as SCRIPT_NAME. "
             "Empty, or starting with '/' and not ending with '/', e.g. '/api'."),
    # Binding ---------------------------------------------------------------------------
    Setting(
        "bind", ("-b", "--bind"), "Binding", ["127.0.0.1:8000"], _bind, kind="address",
        metavar="ADDRESS", append=True,
        help="Address to listen on; repeat the flag to listen on several.  Forms: "
             "'HOST:PORT', '[IPv6]:PORT', ':PORT' or 'PORT' (all interfaces, IPv4 and IPv6 "
             "where the host has it), 'unix:PATH'.  In the environment, separate several "
             "addresses with spaces or commas."),
    Setting(
        "backlog", ("--backlog",), "Binding", 2048, _integer(1), kind="integer",
        metavar="N", help="The listen() backlog: connections the kernel queues unaccepted."),
    Setting(
        "fd", ("--fd",), "Binding", [], _integer(0), kind="integer", metavar="N",
        append=True, default_text="none",
        help="Serve on the already-listening socket inherited as file descriptor N "
             "(repeatable), instead of --bind.  Sockets passed by systemd socket activation "
             "(LISTEN_FDS) are used the same way without this flag."),
    # Workers ---------------------------------------------------------------------------
    Setting(
        "workers", ("-w", "--workers"), "Workers", 1, _integer(1), kind="integer",
        metavar="N",
        help="Worker processes, each with its own event loop, under a supervising master. "
             "TTIN and TTOU add and remove one."),
    Setting(
        "threads", ("--threads",), "Workers", 0, _integer(0), kind="integer", metavar="N",
        help="Run the application on a pool of N threads per worker, the loop still doing "
             "all socket I/O; 0 runs it on the loop thread (fastest for quick requests)."),
    Setting(
        "timeout", ("-t", "--timeout"), "Workers", 30.0, _seconds(True), kind="seconds",
        metavar="SECONDS",
        help="A worker whose loop sends no heartbeat for this long (an application that "
             "never returns) has its stack dumped to the error log and is replaced. "
             "0 disables the watchdog."),
    Setting(
        "request_timeout", ("--request-timeout",), "Workers", 0.0, _seconds(True),
        kind="seconds", metavar="SECONDS",
        help="A single request running the application longer than this has its stack "
             "logged and its worker replaced. 0 disables it."),
    Setting(
        "max_requests", ("--max-requests",), "Workers", 0, _integer(0), kind="integer",
        metavar="N",
        help="Replace a worker, gracefully, after it has served this many requests. "
             "0 disables it."),
    Setting(
        "max_requests_jitter", ("--max-requests-jitter",), "Workers", 0, _integer(0),
        kind="integer", metavar="N",
        help="Add a random 0..N to each worker's --max-requests, so workers do not all "
             "restart at once."),
    Setting(
        "max_rss", ("--max-rss",), "Workers", 0, _size(0), kind="size", metavar="BYTES",
        help="Replace a worker, gracefully, once its resident memory passes this size "
             "(e.g. 512m). 0 disables it."),
    Setting(
        "preload", ("--preload",), "Workers", False, _boolean, kind="flag",
        help="Import the application in the master before forking: faster worker start and "
             "shared memory, but HUP then restarts workers without re-importing the code."),
    Setting(
        "reuse_port", ("--reuse-port",), "Workers", False, _boolean, kind="flag",
        help="Also give every worker its own SO_REUSEPORT listening socket per TCP address, "
             "balanced by the kernel, beside the shared one (which every worker accepts "
             "from with EPOLLEXCLUSIVE).  See the README for which to choose."),
    Setting(
        "pid", ("--pid",), "Workers", None, _optional_path, kind="path", metavar="FILE",
        default_text="none",
        help="Write the master's process id to this file."),
    Setting(
        "user", ("--user",), "Workers", None, _optional_name, kind="string", default_text="none",
        metavar="USER",
        help="Switch to this user (name or id) after binding the sockets."),
    Setting(
        "group", ("--group",), "Workers", None, _optional_name, kind="string", default_text="none",
        metavar="GROUP",
        help="Switch to this group (name or id) after binding the sockets."),
    Setting(
        "umask", ("--umask",), "Workers", None, _umask, kind="octal", metavar="MASK",
        default_text="none",
        help="File mode creation mask for the server processes, e.g. 022."),
    # Logging ---------------------------------------------------------------------------
    Setting(
        "log_level", ("--log-level",), "Logging", "info", _choice(LOG_LEVELS),
        kind="choice", metavar="LEVEL",
        help="Least severity written to the error log: " + ", ".join(LOG_LEVELS) + "."),
    Setting(
        "error_log", ("--error-log",), "Logging", "-", _log_target, kind="path",
        metavar="FILE", aliases=("--error-logfile",), default_text="-",
        help="Where the error log goes: '-' for stderr, or a file to append to."),
    Setting(
        "access_log", ("--access-log",), "Logging", None, _optional_path, kind="path",
        metavar="FILE", aliases=("--access-logfile",), default_text="none",
        help="Where the access log goes: '-' for stdout, or a file to append to.  Unset "
             "or empty: no access log."),
    Setting(
        "access_log_format", ("--access-log-format",), "Logging",
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
        _access_log_format, kind="format", metavar="FORMAT",
        help="The access log line, with gunicorn-style atoms: h remote address, l '-', "
             "u remote user, t time, r request line, m method, U path, q query string, "
             "H protocol, s status, b response bytes ('-' for none), B response bytes, "
             "f referer, a user agent, T seconds, M milliseconds, D microseconds, "
             "p process id, {name}i request header.  The default is Apache's combined "
             "format."),
    # HTTP limits -----------------------------------------------------------------------
    Setting(
        "limit_request_line", ("--limit-request-line",), "HTTP limits", 8190, _size(1),
        kind="size", metavar="BYTES",
        help="Longest request line (method, target and version) accepted; longer gets 414."),
    Setting(
        "limit_request_fields", ("--limit-request-fields",), "HTTP limits", 100,
        _integer(1), kind="integer", metavar="N",
        help="Most header fields in one request; more gets 431."),
    Setting(
        "limit_request_field_size", ("--limit-request-field-size",), "HTTP limits", 8190,
        _size(1), kind="size", metavar="BYTES", aliases=("--limit-request-field_size",),
        help="Longest single header field line; longer gets 431."),
    Setting(
        "limit_request_head", ("--limit-request-head",), "HTTP limits", 65536, _size(1),
        kind="size", metavar="BYTES",
        help="Most bytes in the request line and all header fields together; more gets 431."),
    Setting(
        "max_body_size", ("--max-body-size",), "HTTP limits", 1 << 30, _size(0),
        kind="size", metavar="BYTES", default_text="1073741824 = 1g",
        help="Largest request body accepted, after de-chunking; larger gets 413.  "
             "0 means no limit."),
    Setting(
        "spool_threshold", ("--spool-threshold",), "HTTP limits", 256 << 10, _size(0),
        kind="size", metavar="BYTES", default_text="262144 = 256k",
        help="Request bodies larger than this are spooled to a temporary file instead of "
             "memory."),
    # Timeouts --------------------------------------------------------------------------
    Setting(
        "header_timeout", ("--header-timeout",), "Timeouts", 10.0, _seconds(False),
        kind="seconds", metavar="SECONDS",
        help="The whole request head must arrive within this many seconds, else the "
             "connection is closed."),
    Setting(
        "keepalive_timeout", ("--keep-alive",), "Timeouts", 5.0, _seconds(False),
        kind="seconds", metavar="SECONDS", aliases=("--keepalive-timeout",),
        help="How long an idle keep-alive connection waits for its next request."),
    Setting(
        "body_timeout", ("--body-timeout",), "Timeouts", 30.0, _seconds(False),
        kind="seconds", metavar="SECONDS",
        help="Most seconds without progress while reading a request body, else the "
             "connection is closed."),
    Setting(
        "graceful_timeout", ("--graceful-timeout",), "Timeouts", 30.0, _seconds(True),
        kind="seconds", metavar="SECONDS",
        help="On TERM or INT, how long requests in flight may take to finish before their "
             "connections are closed."),
    # Server ----------------------------------------------------------------------------
    Setting(
        "server_header", ("--server-header",), "Server", "wsgiloop", _header_value,
        kind="string", metavar="TEXT",
        help="Value of the Server response header; empty sends none."),
    Setting(
        "certfile", ("--certfile",), "Server", None, _optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="Serve HTTPS with this PEM certificate (chain); with --keyfile for its key."),
    Setting(
        "keyfile", ("--keyfile",), "Server", None, _optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="The PEM private key of --certfile (if not inside the certificate file)."),
    Setting(
        "ca_certs", ("--ca-certs",), "Server", None, _optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="Require client certificates signed by these PEM CA certificates."),
    Setting(
        "forwarded_allow_ips", ("--forwarded-allow-ips",), "Server", "127.0.0.1,::1,unix",
        _proxy_list, kind="list", metavar="IPS",
        help="Comma-separated addresses or networks of trusted proxies, 'unix' for peers "
             "on a Unix socket, or '*'.  Only their Forwarded / X-Forwarded-For / -Proto / "
             "-Host headers (and PROXY headers) are believed: they set REMOTE_ADDR (the "
             "right-most untrusted hop), wsgi.url_scheme and HTTP_HOST."),
    Setting(
        "proxy_protocol", ("--proxy-protocol",), "Server", False, _boolean, kind="flag",
        help="Expect a PROXY protocol v1 or v2 header (from HAProxy, say) at the start of "
             "each connection from a trusted proxy (--forwarded-allow-ips)."),
    Setting(
        "slow_callback_threshold", ("--slow-callback-threshold",), "Server", 1.0,
        _seconds(True), kind="seconds", metavar="SECONDS",
        help="Warn, with the stack, when the event loop is blocked by one callback "
             "(such as the application) for longer than this.  0 disables the warning."),
]

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


# ---------------------------------------------------------------------------------------
# Settings object.
# ---------------------------------------------------------------------------------------


class Settings:
    """Every setting except ``app``, read as attributes: ``settings.backlog``.

    ``Settings()`` holds the defaults; ``Settings(backlog=16)`` overrides some with
    Python values (not checked: for tests and embedding).  :meth:`source` tells where
    a value came from: ``"default"``, ``"environment"``, ``"command line"`` or
    ``"override"``.
    """

    __slots__ = ("_values", "_sources")

    def __init__(self, **overrides: Any) -> None:
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for s in SETTINGS:
            if not s.positional:
                values[s.name] = list(s.default) if s.append else s.default
                sources[s.name] = "default"
        for name, value in overrides.items():
            if name not in values:
                raise TypeError(f"unknown setting {name!r}")
            values[name] = value
            sources[name] = "override"
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_sources", sources)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Settings are immutable; use replace()")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self._values.items()
                            if self._sources[k] != "default")
        return f"Settings({changed})"

    def source(self, name: str) -> str:
        """Where the value of ``name`` came from."""
        return self._sources[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (as Python values, not checked)."""
        for name in changes:
            if name not in self._values:
                raise TypeError(f"unknown setting {name!r}")
        new = Settings()
        new._values.update(self._values)
        new._sources.update(self._sources)
        new._values.update(changes)
        new._sources.update({name: "override" for name in changes})
        return new

    @classmethod
    def _build(cls, values: dict[str, Any], sources: dict[str, str]) -> Settings:
        new = cls()
        new._values.update(values)
        new._sources.update(sources)
        return new


# ---------------------------------------------------------------------------------------
# Command line and environment.
# ---------------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def _help_text(s: Setting) -> str:
    text = s.help if s.positional else f"{s.help}  (default: {s.shown_default})"
    return text.replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for ``wsgiloop``, generated from :data:`SETTINGS`.

    Options default to "not given" (absent from the namespace) so that the environment
    can fill them; values stay text, to be checked by :func:`load_settings`.
    """
    parser = argparse.ArgumentParser(
        prog="wsgiloop",
        usage="wsgiloop [OPTIONS] APP",
        description="Serve a WSGI application (PEP 3333) on an epoll event loop.",
        epilog="Every option can also be set by an environment variable WSGILOOP_<NAME>, "
               "e.g.\nWSGILOOP_BIND or WSGILOOP_LOG_LEVEL; the command line wins over the "
               "environment.\nSee docs/settings.md for the full reference.",
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
        add_help=False,
    )
    groups = {name: parser.add_argument_group(name) for name in SECTIONS}
    for s in SETTINGS:
        group = groups[s.section]
        if s.positional:
            group.add_argument(s.name, metavar=s.flags[0], nargs="?",
                               default=argparse.SUPPRESS, help=_help_text(s))
            continue
        if s.kind == "flag":
            group.add_argument(*s.flags, dest=s.name, action="store_const", const="true",
                               default=argparse.SUPPRESS, help=_help_text(s))
            continue
        action = "append" if s.append else "store"
        group.add_argument(*s.flags, dest=s.name, action=action, metavar=s.metavar,
                           default=argparse.SUPPRESS, help=_help_text(s))
        for flag, value in s.shortcuts:
            group.add_argument(flag, dest=s.name, action="store_const", const=value,
                               default=argparse.SUPPRESS,
                               help=f"Same as {s.flags[-1]} {value}.")
        for alias in s.aliases:
            group.add_argument(alias, dest=s.name, action=action, metavar=s.metavar,
                               default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    info = parser.add_argument_group("Information")
    info.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    info.add_argument("--version", action="version", version=f"wsgiloop {__version__}",
                      help="Show the version and exit.")
    return parser


def _split_env_list(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text) if part]


def _convert(s: Setting, raw: str | list[str], where: str) -> Any:
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        try:
            values.append(s.validate(item))
        except ValueError as e:
            raise ConfigError(f"{where}: invalid value {item!r}: {e}")
    if s.append:
        if not values:
            raise ConfigError(f"{where}: no value given")
        return values
    return values[0]


def unknown_env_vars(environ: Mapping[str, str]) -> list[str]:
    """``WSGILOOP_*`` variables in ``environ`` that name no setting (likely typos)."""
    known = {s.env_var for s in SETTINGS}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(argv: Sequence[str],
                  environ: Mapping[str, str]) -> tuple[Settings, str]:
    """Build the settings from defaults, then ``environ``, then ``argv``.

    Returns the settings and the application spec (``APP`` or ``WSGILOOP_APP``).
    Raises :class:`ConfigError` for a bad value or a missing APP.  Usage errors
    (unknown option, missing option argument) and ``--help``/``--version`` exit through
    argparse with ``SystemExit`` (status 2, resp. 0), as argparse does.
    """
    namespace = vars(build_parser().parse_args(list(argv)))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    app_spec: str | None = None
    for s in SETTINGS:
        if s.name in namespace:
            flag = "APP" if s.positional else s.flags[-1]
            value = _convert(s, namespace[s.name], flag)
            source = "command line"
        elif s.env_var in environ:
            raw = environ[s.env_var]
            value = _convert(s, _split_env_list(raw) if s.append else raw, s.env_var)
            source = "environment"
        else:
            continue
        if s.positional:
            app_spec = value
        else:
            values[s.name] = value
            sources[s.name] = source
    if app_spec is None:
        raise ConfigError("no application given: wsgiloop [OPTIONS] module:app "
                          "(see wsgiloop --help)")
    return Settings._build(values, sources), app_spec


# ---------------------------------------------------------------------------------------
# Documentation.
# ---------------------------------------------------------------------------------------


def _md_code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _doc_default(s: Setting) -> str:
    if s.positional:
        return "none: required, on the command line or in the environment"
    if s.default is None:
        return "none"
    return _md_code(s.shown_default)


def _spelled(s: Setting) -> str:
    if s.positional:
        return _md_code(s.flags[0]) + " (positional)"
    return ", ".join(_md_code(f"{f} {s.metavar}") for f in s.flags)


def render_settings_doc() -> str:
    """The markdown of ``docs/settings.md``."""
    out = [
        "<!-- Generated by `python -m wsgiloop.config > docs/settings.md`; do not edit. -->",
        "",
        "# wsgiloop settings",
        "",
        "Each setting can be given on the command line or in an environment variable "
        "`WSGILOOP_<NAME>`.  Precedence, lowest first: the default, the environment, "
        "the command line.  A repeatable option given on the command line replaces the "
        "environment's value rather than adding to it.",
        "",
        "Sizes are bytes, optionally with a binary suffix: `64k` = 65536, `1m`, `1g`.  "
        "Seconds may have a fraction.  Negative numbers are refused.",
        "",
        "| Setting | Command line | Environment | Default |",
        "| --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        flag = s.flags[0] if s.positional else s.flags[-1]
        default = "required" if s.positional else _doc_default(s)
        out.append(f"| [`{s.name}`](#{s.name}) | {_md_code(flag)} | {_md_code(s.env_var)} "
                   f"| {default.replace('|', '&#124;')} |")
    out.append("")
    for section in SECTIONS:
        out += [f"## {section}", ""]
        for s in SETTINGS:
            if s.section != section:
                continue
            out += [f"### `{s.name}`", ""]
            out.append(f"* Command line: {_spelled(s)}")
            if s.aliases:
                out.append("* Also accepted: " + ", ".join(_md_code(a) for a in s.aliases))
            if s.shortcuts:
                out.append("* Shortcuts: " + ", ".join(
                    f"{_md_code(flag)} (= {_md_code(value)})" for flag, value in s.shortcuts))
            if s.append:
                out.append("* Repeatable: yes")
            out.append(f"* Environment: {_md_code(s.env_var)}")
            out.append(f"* Type: {s.kind}")
            out.append(f"* Default: {_doc_default(s)}")
            out += ["", s.help, ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_settings_doc(), end="")
