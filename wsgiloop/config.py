"""Settings: one table, from which the CLI, the environment, the config files and the
docs all follow.

Promises this module keeps:

* Every setting is declared once, in :data:`SETTINGS`.  :func:`build_parser`, the
  environment reader, the config file readers and :func:`render_settings_doc` are all
  generated from that table, so a flag, its ``WSGILOOP_<NAME>`` variable, its name in a
  config file and its documentation cannot drift apart.
* Precedence, lowest first: the defaults, ``PORT``/``WEB_CONCURRENCY`` (gunicorn's
  fallbacks for bind and workers), ``[tool.wsgiloop]`` in ``./pyproject.toml``, the
  config file (``-c``; a gunicorn-style Python file or a TOML file), the environment
  (``WSGILOOP_<NAME>``), ``GUNICORN_CMD_ARGS``, ``WSGILOOP_CMD_ARGS`` (more command-line
  arguments, split like a shell does), the command line.  The value that wins replaces
  the others whole: a repeatable setting (``bind``) given on the command line replaces,
  not extends, the environment's value.  :meth:`Settings.source` tells which of these a
  value came from.
* A Python config file written for gunicorn works unchanged when it only uses settings
  wsgiloop has: gunicorn's names are translated by :data:`GUNICORN_SETTINGS`.  A name
  that means nothing here is a :class:`ConfigError` (unknown name, a hook wsgiloop does
  not run, or a feature whose absence would matter), or a warning when ignoring it is
  harmless.
* Values are validated here, not by argparse, and only the value that wins is checked.
  A bad value raises :class:`ConfigError` whose message is one line naming where the
  value came from (``--backlog``, ``WSGILOOP_BACKLOG``, ``gunicorn.conf.py: backlog``).
* A :class:`Settings` is immutable; use :meth:`Settings.replace` to derive another.

``python -m wsgiloop.config > docs/settings.md`` regenerates the settings reference.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import math
import os
import re
import shlex
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__

ENV_PREFIX = "WSGILOOP_"
#: More command-line arguments, in one environment variable (like GUNICORN_CMD_ARGS).
CMD_ARGS_VAR = ENV_PREFIX + "CMD_ARGS"
#: gunicorn's variable, read too (below WSGILOOP_CMD_ARGS), so a deployment moves as is.
GUNICORN_CMD_ARGS_VAR = "GUNICORN_CMD_ARGS"
#: Set by a daemonized master for the masters it re-executes (USR2); not a setting.
DAEMON_MASTER_VAR = ENV_PREFIX + "DAEMON_MASTER"
#: Read from the current directory when no config file is named (as gunicorn does).
DEFAULT_CONFIG_FILE = "gunicorn.conf.py"

# Where a value came from, as Settings.source() reports it; lowest precedence first.
SOURCE_DEFAULT = "default"
#: PORT and WEB_CONCURRENCY, which hosting platforms set and gunicorn falls back to.
SOURCE_PLATFORM = "PORT/WEB_CONCURRENCY"
SOURCE_PYPROJECT = "pyproject.toml"
SOURCE_CONFIG_FILE = "config file"
SOURCE_ENVIRONMENT = "environment"
SOURCE_GUNICORN_CMD_ARGS = GUNICORN_CMD_ARGS_VAR
SOURCE_CMD_ARGS = CMD_ARGS_VAR
SOURCE_COMMAND_LINE = "command line"
SOURCE_OVERRIDE = "override"

# Section names, in the order they appear in --help and in docs/settings.md.
SECTIONS = ("Configuration", "Application", "Binding", "Workers", "Logging", "HTTP limits",
            "Timeouts", "Server", "Server hooks")


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


def _static_mapping(text: str) -> str:
    prefix, eq, directory = text.partition("=")
    if not eq or not prefix.startswith("/") or not directory:
        raise ValueError("expected PREFIX=DIR, e.g. /static=./staticfiles")
    return f"{prefix.rstrip('/') or '/'}={directory}"


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


def _reload_engine(text: str) -> str:
    engine = _choice(("auto", "poll", "inotify"))(text)
    if engine == "inotify" and importlib.util.find_spec("watchfiles") is None:
        raise ValueError("'inotify' needs the watchfiles package (pip install watchfiles)")
    return engine


def _path(text: str) -> str:
    if not text:
        raise ValueError("a file name is needed")
    return text


_HOOK_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def _hook_spec(text: str) -> str | None:
    """A hook named on the command line or in the environment: ``module:function``."""
    text = text.strip()
    if not text:
        return None
    if not _HOOK_SPEC.fullmatch(text):
        raise ValueError("expected MODULE:FUNCTION")
    return text


def _ciphers(text: str) -> str | None:
    import ssl

    if not text.strip():
        return None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(text.strip())
    except ssl.SSLError:
        raise ValueError("OpenSSL selects no cipher from this list") from None
    return text.strip()


def _optional_name(text: str) -> str | None:
    return text.strip() or None


def _cert_reqs(text: str) -> int | None:
    """gunicorn's cert_reqs: 0, 1 or 2 (``ssl.CERT_NONE``/``OPTIONAL``/``REQUIRED``)."""
    text = text.strip()
    if not text:
        return None
    if text not in ("0", "1", "2"):
        raise ValueError("expected 0 (none), 1 (optional) or 2 (required)")
    return int(text)


def _optional_path(text: str) -> str | None:
    """A file or directory path; the empty string means "none"."""
    return text or None


def _path_list(text: str) -> list[str] | None:
    """Comma-separated directories; empty means "none"."""
    paths = [part.strip() for part in text.split(",") if part.strip()]
    return paths or None


_ENV_NAME = re.compile(r"[^=\x00]+")


def _raw_env(text: str) -> str:
    """``KEY=VALUE``, as gunicorn's ``-e``."""
    key, sep, value = text.partition("=")
    if not sep or not _ENV_NAME.fullmatch(key.strip()):
        raise ValueError("expected KEY=VALUE")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return f"{key.strip()}={value}"


def _env_words(text: str) -> list[str]:
    """Split an environment value like a shell does (for values that may hold spaces)."""
    try:
        return shlex.split(text)
    except ValueError as e:
        raise ValueError(f"cannot split it like a shell does ({e})")


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
    #: How the environment variable of an ``append`` setting splits into values
    #: (default: at spaces and commas).
    env_split: Callable[[str], list[str]] | None = None

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
    # Configuration ---------------------------------------------------------------------
    Setting(
        "config", ("-c", "--config"), "Configuration", None, _optional_path, kind="path",
        metavar="FILE", default_text=f"./{DEFAULT_CONFIG_FILE} if it exists, else none",
        help="Read settings from this file: a Python file in gunicorn's style (module-level "
             "assignments such as workers = 4, with gunicorn's or wsgiloop's setting names), "
             "'python:MODULE' for such a file found on sys.path, or a TOML file (name ending "
             "in .toml; wsgiloop's setting names).  A relative path is relative to the "
             "directory wsgiloop was started in.  Empty: read no config file, not even "
             f"./{DEFAULT_CONFIG_FILE}."),
    Setting(
        "check_config", ("--check-config",), "Configuration", False, _boolean, kind="flag",
        help="Check the settings and import the application, then exit: status 0 if both "
             "are fine, else 2 with the error."),
    Setting(
        "print_config", ("--print-config",), "Configuration", False, _boolean, kind="flag",
        help="Print every setting's value and where it came from (default, "
             "PORT/WEB_CONCURRENCY, pyproject.toml, config file, environment, "
             "GUNICORN_CMD_ARGS, WSGILOOP_CMD_ARGS, command line), then exit."),
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
        "pythonpath", ("--pythonpath",), "Application", None, _path_list, kind="path list",
        metavar="DIRS", default_text="none",
        help="Comma-separated directories to put first on sys.path (relative ones are "
             "taken from the directory after --chdir), before the application is loaded."),
    Setting(
        "raw_env", ("-e", "--env"), "Application", [], _raw_env, kind="KEY=VALUE",
        metavar="KEY=VALUE", append=True, default_text="none", env_split=_env_words,
        help="Set an environment variable in the server processes before the application "
             "is loaded; repeat the flag for several.  In WSGILOOP_RAW_ENV, separate "
             "several with spaces, quoting as a shell does."),
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
             "where the host has it), 'HOST' alone (port 8000), 'unix:PATH', 'fd://FD' "
             "(an inherited listening socket); gunicorn's 'tcp://' and 'unix://' prefixes "
             "are accepted too.  In the environment, separate several addresses with "
             "spaces or commas."),
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
        "worker_connections", ("--worker-connections",), "Workers", 1000, _integer(1),
        kind="integer", metavar="N",
        help="Most connections one worker holds open at once; past it the worker stops "
             "accepting, so new connections wait in the listen backlog for another worker."),
    Setting(
        "proc_name", ("-n", "--name"), "Workers", None, _optional_name, metavar="NAME",
        default_text="the application",
        help="The name in the process titles: 'wsgiloop: master [NAME]', 'wsgiloop: "
             "worker N [NAME]' (shown when setproctitle is installed)."),
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
        help="Replace a worker after it has served this many requests: it takes no "
             "new request then, finishes those under way and exits, while the master "
             "starts its replacement.  0 disables it."),
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
        "pid", ("-p", "--pid"), "Workers", None, _optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="Write the master's process id to this file."),
    Setting(
        "daemon", ("-D", "--daemon"), "Workers", False, _boolean, kind="flag",
        shortcuts=(("--no-daemon", "false"),),
        help="Detach from the terminal: the command returns once the server serves (status "
             "0, having printed the addresses) or has failed to start (status 2 and the "
             "error), and the master goes on in the background.  Its stdin and stdout are "
             "/dev/null, its stderr the --error-log file if there is one, else /dev/null; "
             "use --pid to find it later."),
    Setting(
        "user", ("-u", "--user"), "Workers", None, _optional_name, kind="string",
        default_text="none", metavar="USER",
        help="Switch to this user (name or id) after binding the sockets."),
    Setting(
        "group", ("-g", "--group"), "Workers", None, _optional_name, kind="string",
        default_text="none", metavar="GROUP",
        help="Switch to this group (name or id) after binding the sockets."),
    Setting(
        "umask", ("-m", "--umask"), "Workers", None, _umask, kind="octal", metavar="MASK",
        default_text="none",
        help="File mode creation mask for the server processes, e.g. 022."),
    # Logging ---------------------------------------------------------------------------
    Setting(
        "log_level", ("--log-level",), "Logging", "info", _choice(LOG_LEVELS),
        kind="choice", metavar="LEVEL",
        help="Least severity written to the error log: " + ", ".join(LOG_LEVELS) + "."),
    Setting(
        "error_log", ("--error-log",), "Logging", "-", _log_target, kind="path",
        metavar="FILE", aliases=("--error-logfile", "--log-file"), default_text="-",
        help="Where the error log goes: '-' for stderr, or a file to append to."),
    Setting(
        "access_log", ("--access-log",), "Logging", None, _optional_path, kind="path",
        metavar="FILE", aliases=("--access-logfile",), default_text="none",
        help="Where the access log goes: '-' for stdout, or a file to append to.  Unset "
             "or empty: no access log."),
    Setting(
        "access_log_format", ("--access-log-format",), "Logging",
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
        _access_log_format, kind="format", metavar="FORMAT", aliases=("--access-logformat",),
        help="The access log line, with gunicorn's atoms: h remote address, l '-', "
             "u remote user, t time, r request line, m method, U path (decoded), "
             "q query string, H protocol, s status, b and B response bytes, f referer, "
             "a user agent, T seconds, M milliseconds, D microseconds, L seconds with "
             "decimals, p process id, {name}i request header, {name}o response header, "
             "{key}e WSGI environ value.  The default is Apache's combined format."),
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
    Setting(
        "spool_dir", ("--spool-dir",), "HTTP limits", None, _optional_path, kind="path",
        metavar="DIR", default_text="the system temporary directory",
        help="Where spooled request bodies are written; checked to be a writable "
             "directory at start-up."),
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
        "body_min_rate", ("--body-min-rate",), "Timeouts", 512, _size(0), kind="size",
        metavar="BYTES", default_text="512",
        help="Least average rate, in bytes per second, at which a request body must arrive "
             "once --body-timeout seconds have passed since it began; slower gets 408.  "
             "0 disables the check."),
    Setting(
        "send_timeout", ("--send-timeout",), "Timeouts", 30.0, _seconds(False),
        kind="seconds", metavar="SECONDS",
        help="Most seconds a response may go without the client taking any of it; then "
             "the connection is closed and the application's iterable closed."),
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
        "static", ("--static",), "Server", [], _static_mapping, kind="mapping",
        metavar="PREFIX=DIR", append=True, default_text="none",
        help="Serve the files under DIR at URL PREFIX (e.g. /static=./staticfiles) "
             "before the application sees the request: sendfile, ETag, Last-Modified, "
             "byte ranges, an hour of caching.  Repeatable."),
    Setting(
        "reload", ("--reload",), "Server", False, _boolean, kind="flag",
        help="For development: restart the workers when a .py file under the current "
             "directory changes (see --reload-engine).  A file with a syntax error is "
             "logged and the running workers keep serving."),
    Setting(
        "reload_engine", ("--reload-engine",), "Server", "auto", _reload_engine,
        kind="choice", metavar="ENGINE",
        help="How --reload notices changes: 'inotify' waits for the kernel's notification "
             "(needs the watchfiles package), 'poll' checks the files' times each second, "
             "'auto' is inotify when watchfiles is installed, else poll."),
    Setting(
        "reload_extra_files", ("--reload-extra-file",), "Server", [], _path, kind="path",
        metavar="FILE", append=True, default_text="none",
        help="With --reload, also restart the workers when this file changes (a template, "
             "a configuration file...).  Repeatable."),
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
        "cert_reqs", ("--cert-reqs",), "Server", None, _cert_reqs, kind="choice",
        metavar="N", default_text="2 with --ca-certs, else 0",
        help="Client certificates (gunicorn's cert_reqs, Python's ssl.CERT_*): 0 none "
             "asked, 1 optional, 2 required; 1 and 2 need --ca-certs to verify them."),
    Setting(
        "ciphers", ("--ciphers",), "Server", None, _ciphers, metavar="CIPHERS",
        default_text="Python's defaults",
        help="The TLS 1.2 cipher suites to offer, in OpenSSL's list syntax (for example "
             "ECDHE+AESGCM); TLS 1.3 suites are not affected."),
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
             "each connection from a trusted proxy (--proxy-allow-from)."),
    Setting(
        "proxy_allow_ips", ("--proxy-allow-from",), "Server", "", _proxy_list, kind="list",
        metavar="IPS", default_text="the --forwarded-allow-ips list",
        help="Comma-separated addresses or networks, 'unix' or '*': the peers whose PROXY "
             "protocol headers are believed, when they differ from --forwarded-allow-ips. "
             "Connections from other peers are served without a PROXY header."),
    Setting(
        "slow_callback_threshold", ("--slow-callback-threshold",), "Server", 1.0,
        _seconds(True), kind="seconds", metavar="SECONDS",
        help="Warn, with the stack, when the event loop is blocked by one callback "
             "(such as the application) for longer than this.  0 disables the warning."),
    *(Setting(name, ("--" + name.replace("_", "-"),), "Server hooks", None, _hook_spec,
              kind="hook", metavar="MODULE:FUNCTION", default_text="none",
              help=f"gunicorn's {name}{arguments} hook: a function in a Python config "
                   f"file, or MODULE:FUNCTION.  {when}")
      for name, arguments, when in (
          ("on_starting", "(server)", "Runs in the master before the workers start."),
          ("when_ready", "(server)", "Runs in the master once the sockets are bound."),
          ("on_reload", "(server)", "Runs in the master on a reload (HUP)."),
          ("pre_fork", "(server, worker)", "Runs in the master before a worker is forked."),
          ("post_fork", "(server, worker)", "Runs in a new worker, before it loads the "
                                            "application."),
          ("post_worker_init", "(worker)", "Runs in a worker once the application is "
                                           "loaded."),
          ("worker_int", "(worker)", "Runs in a worker told to stop at once (INT, QUIT)."),
          ("worker_abort", "(worker)", "Runs in a worker that went silent past --timeout "
                                       "(the master sends SIGABRT), before it exits."),
          ("pre_exec", "(server)", "Runs in the master before it starts a new master "
                                   "(USR2)."),
          ("pre_request", "(worker, req)", "Runs in a worker before each WSGI request."),
          ("post_request", "(worker, req, environ, resp)", "Runs in a worker after each "
                                                           "WSGI response."),
          ("child_exit", "(server, worker)", "Runs in the master after a worker exited."),
          ("worker_exit", "(server, worker)", "Runs in a worker just before it exits."),
          ("nworkers_changed", "(server, new_value, old_value)", "Runs in the master when "
                                                                "the worker count changes."),
          ("on_exit", "(server)", "Runs in the master just before it exits."),
          ("ssl_context", "(config, default_ssl_context_factory)", "Returns the TLS "
                                                                   "context to use."),
      )),
]

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


# ---------------------------------------------------------------------------------------
# Settings object.
# ---------------------------------------------------------------------------------------


class Settings:
    """Every setting except ``app``, read as attributes: ``settings.backlog``.

    ``Settings()`` holds the defaults; ``Settings(backlog=16)`` overrides some with
    Python values (not checked: for tests and embedding).  :meth:`source` tells where
    a value came from: ``"default"``, ``"pyproject.toml"``, ``"config file"``,
    ``"environment"``, ``"WSGILOOP_CMD_ARGS"``, ``"command line"`` or ``"override"``.
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


def build_parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
                 ) -> argparse.ArgumentParser:
    """The argparse parser for ``wsgiloop``, generated from :data:`SETTINGS`.

    Options default to "not given" (absent from the namespace) so that the config files
    and the environment can fill them; values stay text, to be checked by
    :func:`load_settings`.
    """
    parser = parser_class(
        prog="wsgiloop",
        usage="wsgiloop [OPTIONS] APP",
        description="Serve a WSGI application (PEP 3333) on an epoll event loop.",
        epilog="Every option can also be set in [tool.wsgiloop] of ./pyproject.toml, in a "
               "config file (-c;\n./gunicorn.conf.py by default), by an environment "
               "variable WSGILOOP_<NAME> (e.g.\nWSGILOOP_BIND), in GUNICORN_CMD_ARGS or in "
               "WSGILOOP_CMD_ARGS; each of these wins over\nthe ones before it, and the "
               "command line wins over all.  PORT and WEB_CONCURRENCY\n(gunicorn's "
               "fallbacks) set bind and workers when nothing else does.  See\n"
               "docs/settings.md for the full reference.",
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
            action: dict[str, Any] = {"action": "store_const", "const": "true"}
        else:
            action = {"action": "append" if s.append else "store", "metavar": s.metavar}
        group.add_argument(*s.flags, dest=s.name, default=argparse.SUPPRESS,
                           help=_help_text(s), **action)
        for flag, value in s.shortcuts:
            if s.kind == "flag":
                shortcut_help = f"Turn {s.flags[-1]} off (when a config file turns it on)." \
                    if not _boolean(value) else f"Same as {s.flags[-1]}."
            else:
                shortcut_help = f"Same as {s.flags[-1]} {value}."
            group.add_argument(flag, dest=s.name, action="store_const", const=value,
                               default=argparse.SUPPRESS, help=shortcut_help)
        for alias in s.aliases:
            group.add_argument(alias, dest=s.name, default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS, **action)
    info = parser.add_argument_group("Information")
    info.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    info.add_argument("--version", action="version", version=f"wsgiloop {__version__}",
                      help="Show the version and exit.")
    return parser


def _cmd_args_parser(variable: str) -> type[argparse.ArgumentParser]:
    """An argparse parser class whose usage errors are ConfigErrors naming ``variable``."""

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # type: ignore[override]
            raise ConfigError(f"{variable}: {message}")

    return Parser


def _split_env_list(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text) if part]


def _check_items(s: Setting, items: Sequence[tuple[str, Any]], where: str) -> Any:
    """Validate ``(text, shown)`` pairs: the text is checked, ``shown`` is what an error
    message quotes (the text itself, or the Python value of a config file)."""
    values = []
    for text, shown in items:
        try:
            values.append(s.validate(text))
        except ValueError as e:
            raise ConfigError(f"{where}: invalid value {shown!r}: {e}")
    if s.append:
        if not values and s.default != []:
            raise ConfigError(f"{where}: no value given")
        return values
    return values[0]


def _convert(s: Setting, raw: str | list[str], where: str) -> Any:
    items = raw if isinstance(raw, list) else [raw]
    return _check_items(s, [(item, item) for item in items], where)


def _python_text(s: Setting, value: Any, where: str) -> str:
    """The text of one Python value from a config file, for the validators."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and s.name == "umask":
        return format(value, "o")  # umask = 0o022, as os.umask takes it
    if isinstance(value, (int, float, str)):
        return str(value)
    if value is None:
        return ""
    raise ConfigError(f"{where}: invalid value {value!r}: expected a string, a number or "
                      f"a boolean, not {type(value).__name__}")


def _convert_python(s: Setting, value: Any, where: str) -> Any:
    if s.kind == "hook" and callable(value):
        return value  # a function defined in (or imported by) the config file
    if s.append:
        items = [] if value is None else list(value) if isinstance(value, (list, tuple)) \
            else [value]
        return _check_items(s, [(_python_text(s, v, where), v) for v in items], where)
    if isinstance(value, (list, tuple)):
        if s.kind not in ("list", "path list"):
            raise ConfigError(f"{where}: invalid value {value!r}: expected one value, "
                              f"not a list")
        text = ",".join(_python_text(s, v, where) for v in value)
    else:
        text = _python_text(s, value, where)
    return _check_items(s, [(text, value)], where)


def unknown_env_vars(environ: Mapping[str, str]) -> list[str]:
    """``WSGILOOP_*`` variables in ``environ`` that name no setting (likely typos)."""
    known = {s.env_var for s in SETTINGS} | {CMD_ARGS_VAR, DAEMON_MASTER_VAR}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


# ---------------------------------------------------------------------------------------
# gunicorn's setting names, as a Python config file written for gunicorn uses them.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GunicornSetting:
    """What one gunicorn setting becomes in a Python config file.

    ``action`` is one of:

    * ``"set"``: sets wsgiloop's setting ``ours`` (``convert`` first translates gunicorn's
      value where the two differ).  While ``ours`` is not in :data:`SETTINGS` yet, the
      setting is refused as planned.
    * ``"ignore"``: it has no effect here and leaving it out changes nothing that matters;
      a warning says so (``reason``).
    * ``"refuse"``: ignoring it would silently change what the server does for clients or
      which code runs, so it is a :class:`ConfigError` (``reason`` says why and what to
      do instead).
    * ``"hook"``: a gunicorn server hook (a function gunicorn calls); refused likewise.

    A value that asks for nothing -- None, False, 0, an empty string or collection, or
    one of ``quiet`` (gunicorn's default) -- is accepted silently for every action but
    ``"set"``.  ``classify``, when given, picks the action from the value instead.
    """

    action: str
    ours: str | None = None
    reason: str = ""
    quiet: tuple[Any, ...] = ()
    convert: Callable[[Any], Any] | None = None
    classify: Callable[[Any], str] | None = None


def _set(ours: str, convert: Callable[[Any], Any] | None = None) -> GunicornSetting:
    return GunicornSetting("set", ours, convert=convert)


def _ignore(reason: str, *quiet: Any) -> GunicornSetting:
    return GunicornSetting("ignore", reason=reason, quiet=quiet)


def _refuse(reason: str, *quiet: Any) -> GunicornSetting:
    return GunicornSetting("refuse", reason=reason, quiet=quiet)


_HOOK = GunicornSetting(
    "hook", reason="wsgiloop does not run this hook; see docs/migrating-from-gunicorn.md "
                   "for what to do instead, and remove it")


def _unlimited_is_huge(value: Any) -> Any:
    """gunicorn's 0 means "no limit" for these; here the request head limit still holds."""
    return 1 << 30 if type(value) is int and value == 0 else value


def _gunicorn_umask(value: Any) -> Any:
    """gunicorn reads a string umask with int(text, 0): "0o22", "18", "0x12"."""
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            return value  # "022": read as octal, as wsgiloop's --umask does
    return value


def _gunicorn_proxy_protocol(value: Any) -> Any:
    """gunicorn's off/v1/v2/auto: wsgiloop accepts v1 and v2 alike once it is on."""
    text = str(value).strip().lower()
    if value is None or text in ("off", "false", "0", "none", ""):
        return False
    if text in ("on", "true", "1", "auto", "v1", "v2"):
        return True
    return value


_GUNICORN_WORKERS = {"sync": "quiet", "gunicorn.workers.sync.syncworker": "quiet"}
for _name, _cls in (("gthread", "gthread.threadworker"), ("gevent", "ggevent.geventworker"),
                    ("eventlet", "geventlet.eventletworker"),
                    ("tornado", "gtornado.tornadoworker")):
    _GUNICORN_WORKERS[_name] = _GUNICORN_WORKERS["gunicorn.workers." + _cls] = "ignore"


def _worker_class_action(value: Any) -> str:
    if value is None:
        return "quiet"
    return _GUNICORN_WORKERS.get(str(value).strip().lower(), "refuse")


_PLANNED = "not supported yet (planned: issue 5)"
_STRICT_HTTP = ("wsgiloop's HTTP/1.1 parser is strict (RFC 9112) and has no option to relax "
                "it: such requests get 400")

#: Every gunicorn setting (gunicorn 23 to 27), and what it becomes here.
GUNICORN_SETTINGS: dict[str, GunicornSetting] = {
    # Config file
    "config": _set("config"),
    "wsgi_app": _set("app"),
    # Server socket
    "bind": _set("bind"),
    "backlog": _set("backlog"),
    # Worker processes
    "workers": _set("workers"),
    "worker_class": GunicornSetting(
        "refuse", reason="wsgiloop has one kind of worker (an event loop per process, with "
                         "--threads for a thread pool) and serves WSGI applications only",
        classify=_worker_class_action),
    "threads": _set("threads"),
    "worker_connections": _set("worker_connections"),
    "max_requests": _set("max_requests"),
    "max_requests_jitter": _set("max_requests_jitter"),
    "timeout": _set("timeout"),
    "graceful_timeout": _set("graceful_timeout"),
    "keepalive": _set("keepalive_timeout"),
    # Security
    "limit_request_line": _set("limit_request_line", _unlimited_is_huge),
    "limit_request_fields": _set("limit_request_fields"),
    "limit_request_field_size": _set("limit_request_field_size", _unlimited_is_huge),
    # Debugging
    "reload": _set("reload"),
    "reload_engine": _set("reload_engine"),
    "reload_extra_files": _set("reload_extra_files"),
    "spew": _ignore("wsgiloop has no line tracing; use a debugger or faulthandler"),
    "check_config": _set("check_config"),
    "print_config": _set("print_config"),
    # Server mechanics
    "preload_app": _set("preload"),
    "sendfile": GunicornSetting(
        "ignore", reason="wsgiloop always sends wsgi.file_wrapper files with sendfile(2)",
        classify=lambda value: "quiet" if value is None or value is True else "ignore"),
    "reuse_port": _set("reuse_port"),
    "chdir": _set("chdir"),
    "daemon": _set("daemon"),
    "raw_env": _set("raw_env"),
    "pidfile": _set("pid"),
    "worker_tmp_dir": _ignore("wsgiloop's heartbeats use shared memory, not files"),
    "user": _set("user"),
    "group": _set("group"),
    "umask": _set("umask", _gunicorn_umask),
    "initgroups": _ignore("wsgiloop sets only the primary group of --user, no "
                          "supplementary groups"),
    "tmp_upload_dir": _set("spool_dir"),
    "secure_scheme_headers": _refuse(
        "wsgiloop takes the scheme from Forwarded and X-Forwarded-Proto sent by "
        "--forwarded-allow-ips proxies; that header set is fixed",
        {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https",
         "X-FORWARDED-SSL": "on"}),
    "forwarded_allow_ips": _set("forwarded_allow_ips"),
    "pythonpath": _set("pythonpath"),
    "paste": _refuse("PasteDeploy is not supported: name the application as module:app"),
    "raw_paste_global_conf": _refuse("PasteDeploy is not supported"),
    "proxy_protocol": _set("proxy_protocol", _gunicorn_proxy_protocol),
    "proxy_allow_ips": _set("proxy_allow_ips"),
    "protocol": _refuse("wsgiloop speaks HTTP only (no uwsgi protocol)", "http"),
    "uwsgi_allow_ips": _ignore("wsgiloop does not speak the uwsgi protocol",
                               "127.0.0.1,::1"),
    "root_path": _set("root_path"),
    "permit_obsolete_folding": _refuse(_STRICT_HTTP),
    "strip_header_spaces": _refuse(_STRICT_HTTP),
    "permit_unconventional_http_method": _ignore(
        "wsgiloop already accepts any method that is an RFC 9110 token"),
    "permit_unconventional_http_version": _ignore(
        "wsgiloop accepts HTTP/1.x and answers 505 to other versions"),
    "casefold_http_method": _ignore("wsgiloop passes the method to the application as "
                                    "sent"),
    "forwarder_headers": _refuse("wsgiloop never takes SCRIPT_NAME or PATH_INFO from "
                                 "request headers; use --root-path",
                                 "SCRIPT_NAME,PATH_INFO"),
    "header_map": _refuse("wsgiloop always drops header fields whose names contain '_' "
                          "(gunicorn's header_map = 'drop')", "drop"),
    "http_parser": _ignore("wsgiloop has one HTTP parser", "auto"),
    # Logging
    "accesslog": _set("access_log"),
    "disable_redirect_access_to_syslog": _ignore("wsgiloop does not log to syslog"),
    "access_log_format": _set("access_log_format"),
    "errorlog": _set("error_log"),
    "loglevel": _set("log_level"),
    "capture_output": _ignore("the application's stdout and stderr stay the server's; "
                              "use logging in the application to reach the error log"),
    "logger_class": _refuse("wsgiloop's loggers are the logging module's 'wsgiloop.error' "
                            "and 'wsgiloop.access'; configure them with logging instead",
                            "gunicorn.glogging.Logger"),
    "logconfig": _refuse("wsgiloop does not read logging config files; configure logging "
                         "in the application (logging.config.fileConfig)"),
    "logconfig_dict": _refuse("wsgiloop does not apply a logging dictConfig; call "
                              "logging.config.dictConfig in the application"),
    "logconfig_json": _refuse("wsgiloop does not read logging config files; call "
                              "logging.config.dictConfig in the application"),
    "syslog_addr": _ignore("wsgiloop does not log to syslog", "udp://localhost:514"),
    "syslog": _ignore("wsgiloop does not log to syslog: the error log goes to stderr or "
                      "--error-log (journald collects stderr under systemd)"),
    "syslog_prefix": _ignore("wsgiloop does not log to syslog"),
    "syslog_facility": _ignore("wsgiloop does not log to syslog", "user"),
    "enable_stdio_inheritance": _ignore("wsgiloop's --daemon keeps stderr only in the "
                                        "--error-log file"),
    "statsd_host": _ignore("wsgiloop sends no statsd metrics"),
    "dogstatsd_tags": _ignore("wsgiloop sends no statsd metrics"),
    "statsd_prefix": _ignore("wsgiloop sends no statsd metrics"),
    "enable_backlog_metric": _ignore("wsgiloop sends no statsd metrics"),
    # Process naming
    "proc_name": _set("proc_name"),
    "default_proc_name": _ignore("wsgiloop names its processes after APP unless "
                                 "proc_name is given", "gunicorn"),
    # SSL
    "keyfile": _set("keyfile"),
    "certfile": _set("certfile"),
    "ca_certs": _set("ca_certs"),
    "ssl_version": _ignore("wsgiloop uses Python's default TLS context: TLS 1.2 and "
                           "newer"),
    "cert_reqs": _set("cert_reqs"),
    "suppress_ragged_eofs": GunicornSetting(
        "ignore", reason="wsgiloop treats an unclean TLS close as the end of the connection",
        classify=lambda value: "quiet" if value is None or value is True else "ignore"),
    "do_handshake_on_connect": _ignore("wsgiloop always does the TLS handshake "
                                       "asynchronously on the event loop"),
    "ciphers": _set("ciphers"),
    # HTTP/2
    "http_protocols": _refuse("wsgiloop speaks HTTP/1.1 only", "h1"),
    "http2_cleartext": _refuse("wsgiloop speaks HTTP/1.1 only", "off"),
    "http2_max_concurrent_streams": _ignore("wsgiloop speaks HTTP/1.1 only"),
    "http2_initial_window_size": _ignore("wsgiloop speaks HTTP/1.1 only"),
    "http2_max_frame_size": _ignore("wsgiloop speaks HTTP/1.1 only"),
    "http2_max_header_list_size": _ignore("wsgiloop speaks HTTP/1.1 only"),
    # ASGI and WebSocket (gunicorn's ASGI worker)
    "asgi_loop": _ignore("wsgiloop serves WSGI applications only", "auto"),
    "asgi_lifespan": _ignore("wsgiloop serves WSGI applications only", "auto"),
    "asgi_disconnect_grace_period": _ignore("wsgiloop serves WSGI applications only"),
    "websocket_max_message_size": _ignore("wsgiloop serves WSGI applications only"),
    # Dirty arbiters
    "dirty_apps": _refuse("wsgiloop has no dirty arbiters: run such background work in "
                          "its own service"),
    "dirty_workers": _refuse("wsgiloop has no dirty arbiters"),
    "dirty_timeout": _ignore("wsgiloop has no dirty arbiters"),
    "dirty_threads": _ignore("wsgiloop has no dirty arbiters"),
    "dirty_graceful_timeout": _ignore("wsgiloop has no dirty arbiters"),
    # Control socket
    "control_socket": _ignore("wsgiloop is controlled by signals (HUP, TTIN, TTOU, USR1, "
                              "USR2, TERM) to the master"),
    "control_socket_mode": _ignore("wsgiloop has no control socket"),
    "control_socket_disable": _ignore("wsgiloop has no control socket"),
    # Server hooks
    **{hook: _set(hook) for hook in (
        "on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
        "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
        "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit",
        "ssl_context")},
    **{hook: _HOOK for hook in (
        "on_dirty_starting", "dirty_post_fork", "dirty_worker_init", "dirty_worker_exit")},
}


def gunicorn_names_for(name: str) -> list[str]:
    """gunicorn's names that set our setting ``name`` in a Python config file."""
    return [g for g, entry in GUNICORN_SETTINGS.items()
            if entry.action == "set" and entry.ours == name]


def _asks_nothing(value: Any, quiet: tuple[Any, ...]) -> bool:
    if value is None or value is False:
        return True
    if type(value) is int and value == 0:
        return True
    if isinstance(value, (str, list, tuple, dict, set)) and not value:
        return True
    return any(type(value) is type(q) and value == q for q in quiet)


def _translate_gunicorn(name: str, value: Any, where: str,
                        warn: Callable[[str], None]) -> tuple[str, Any] | None:
    """Our setting name and value for gunicorn's ``name = value``; None to skip it."""
    entry = GUNICORN_SETTINGS[name]
    if entry.classify is not None:
        action = entry.classify(value)
    elif entry.action != "set" and _asks_nothing(value, entry.quiet):
        action = "quiet"
    else:
        action = entry.action
    if action == "set":
        assert entry.ours is not None
        if entry.ours not in SETTINGS_BY_NAME:
            if _asks_nothing(value, entry.quiet):
                return None
            raise ConfigError(f"{where}: {_PLANNED}")
        return entry.ours, entry.convert(value) if entry.convert else value
    if action == "quiet":
        return None
    if action == "ignore":
        warn(f"{where}: ignored: {entry.reason}")
        return None
    if action == "hook":
        raise ConfigError(f"{where}: this gunicorn server hook is not supported: "
                          f"{entry.reason}")
    raise ConfigError(f"{where}: not supported: {entry.reason}")


# ---------------------------------------------------------------------------------------
# Config files.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    """One setting's value as one layer gives it, before it is checked."""

    value: Any
    where: str
    #: A Python value from a config file, rather than command-line or environment text.
    python: bool = False


_Layer = dict[str, _Raw]


def _unknown(name: str, where: str, ours_only: bool) -> ConfigError:
    entry = GUNICORN_SETTINGS.get(name)
    if ours_only and entry is not None and entry.ours and entry.ours != name:
        return ConfigError(f"{where}: unknown setting (this is gunicorn's name; wsgiloop's "
                           f"is {entry.ours!r})")
    known = list(SETTINGS_BY_NAME) + ([] if ours_only else list(GUNICORN_SETTINGS))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if not ours_only:
        hint += " (a helper variable must start with '_')"
    return ConfigError(f"{where}: unknown setting{hint}")


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _read_bytes(path: str, shown: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {shown!r} not found")
    except OSError as e:
        raise ConfigError(f"cannot read config file {shown!r}: {_reason(e)}")


def _toml_table(path: str, shown: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ConfigError(f"{shown}: reading TOML needs Python 3.11+ or the tomli "
                              f"package")
    data = _read_bytes(path, shown)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{shown}: invalid TOML: {e}")


def _toml_layer(table: Any, prefix: str) -> _Layer:
    """wsgiloop's own names (``max-requests`` or ``max_requests``) from a TOML table."""
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix}: expected a table of settings")
    layer: _Layer = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        where = f"{prefix}: {key}"
        if name not in SETTINGS_BY_NAME:
            raise _unknown(name, where, ours_only=True)
        if name in layer:
            raise ConfigError(f"{where}: set twice (also as {layer[name].where})")
        layer[name] = _Raw(value, where, python=True)
    return layer


def _python_layer(path: str, shown: str, warn: Callable[[str], None]) -> _Layer:
    """Run a gunicorn-style Python config file and read its module-level names."""
    from .loader import describe_exception

    source = _read_bytes(path, shown)
    try:
        code = compile(source, path, "exec")
    except SyntaxError as e:
        raise ConfigError(f"{shown}:{e.lineno}: syntax error: {e.msg}")
    namespace: dict[str, Any] = {"__file__": path, "__name__": "__config__"}
    try:
        exec(code, namespace)
    except (Exception, SystemExit) as e:
        raise ConfigError(f"{shown}: error while running it: {describe_exception(e)}") \
            from e
    layer: _Layer = {}
    for name, value in namespace.items():
        if name.startswith("_") or isinstance(value, (types.ModuleType, type)):
            continue  # __builtins__, _helpers, imports, classes
        where = f"{shown}: {name}"
        if name in GUNICORN_SETTINGS:
            translated = _translate_gunicorn(name, value, where, warn)
            if translated is None:
                continue
            ours, value = translated
        elif name in SETTINGS_BY_NAME:
            ours = name
        elif callable(value):
            continue  # a helper function
        else:
            raise _unknown(name, where, ours_only=False)
        if ours == "config":
            raise ConfigError(f"{where}: a config file cannot name another config file")
        if ours in layer:
            raise ConfigError(f"{where}: sets {ours} again (also set as {layer[ours].where})")
        layer[ours] = _Raw(value, where, python=True)
    return layer


def _module_file(spec: str, base: str) -> str:
    """The file of ``python:MODULE``, found on sys.path (and in ``base``)."""
    import importlib.util
    import sys

    module = spec.removeprefix("python:").strip()
    added = base not in sys.path
    if added:
        sys.path.insert(0, base)
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    except (ImportError, ValueError) as e:
        raise ConfigError(f"config module {module!r}: {e}")
    finally:
        if added:
            sys.path.remove(base)
    if found is None or not found.origin or not os.path.isfile(found.origin):
        raise ConfigError(f"config module {module!r} not found")
    return found.origin


def _config_file_layer(spec: str, base: str, warn: Callable[[str], None]) -> _Layer:
    if spec.startswith("python:"):
        return _python_layer(_module_file(spec, base), spec, warn)
    path = os.path.join(base, os.path.expanduser(spec))
    if spec.endswith(".toml"):
        table = _toml_table(path, spec)
        if os.path.basename(spec) == "pyproject.toml":
            return _toml_layer(table.get("tool", {}).get("wsgiloop", {}),
                               f"{spec} [tool.wsgiloop]")
        return _toml_layer(table, spec)
    return _python_layer(path, spec, warn)


def _pyproject_layer(base: str) -> _Layer:
    path = os.path.join(base, "pyproject.toml")
    if not os.path.isfile(path):
        return {}
    tool = _toml_table(path, "pyproject.toml").get("tool", {})
    if not isinstance(tool, dict) or "wsgiloop" not in tool:
        return {}
    return _toml_layer(tool["wsgiloop"], "pyproject.toml [tool.wsgiloop]")


# ---------------------------------------------------------------------------------------
# All the layers together.
# ---------------------------------------------------------------------------------------


def _namespace_layer(namespace: dict[str, Any], prefix: str = "") -> _Layer:
    layer: _Layer = {}
    for s in SETTINGS:
        if s.name in namespace:
            flag = "APP" if s.positional else s.flags[-1]
            layer[s.name] = _Raw(namespace[s.name], prefix + flag)
    return layer


def _command_words(environ: Mapping[str, str], variable: str) -> list[str]:
    """The command-line arguments in ``variable``, split as a shell does."""
    try:
        return shlex.split(environ.get(variable, ""))
    except ValueError as e:
        raise ConfigError(f"{variable}: cannot split it like a shell does ({e})")


def _cmd_args_layer(environ: Mapping[str, str]) -> _Layer:
    words = _command_words(environ, CMD_ARGS_VAR)
    if not words:
        return {}
    namespace = vars(build_parser(_cmd_args_parser(CMD_ARGS_VAR)).parse_args(words))
    return _namespace_layer(namespace, f"{CMD_ARGS_VAR}: ")


#: gunicorn's flags whose spelling is not its setting's name (``--worker-tmp-dir`` is
#: ``worker_tmp_dir``), for those wsgiloop's command line does not have.
_GUNICORN_FLAGS = {
    "-k": "worker_class", "-R": "enable_stdio_inheritance", "--no-sendfile": "sendfile",
    "--uwsgi-allow-from": "uwsgi_allow_ips", "--paster": "paste",
    "--paste-global": "raw_paste_global_conf", "--log-config": "logconfig",
    "--log-config-json": "logconfig_json", "--log-syslog": "syslog",
    "--log-syslog-to": "syslog_addr", "--log-syslog-prefix": "syslog_prefix",
    "--log-syslog-facility": "syslog_facility", "--dirty-app": "dirty_apps",
    "--no-control-socket": "control_socket_disable"}
#: Those of them that take no value, and the value they stand for.
_GUNICORN_SWITCHES = {"-R": True, "--no-sendfile": False, "--log-syslog": True,
                      "--no-control-socket": True}


def _gunicorn_cmd_args_layer(environ: Mapping[str, str],
                             warn: Callable[[str], None]) -> _Layer:
    """``GUNICORN_CMD_ARGS``, read as gunicorn reads it: wsgiloop's flags as on the
    command line, and gunicorn's other flags as the same settings in a config file
    (ignored with a warning, or refused, by :data:`GUNICORN_SETTINGS`).  An application
    named there is ignored, as gunicorn does."""
    variable = GUNICORN_CMD_ARGS_VAR
    words = _command_words(environ, variable)
    if not words:
        return {}
    # gunicorn's flags that wsgiloop's command line lacks are taken out first, each with
    # the value that follows it (if any); the rest is parsed as a command line.
    ours = _own_flags()
    theirs: list[tuple[str, str, Any]] = []  # (flag, gunicorn setting, value)
    words_for_us: list[str] = []
    i = 0
    while i < len(words):
        flag, eq, value = words[i].partition("=")
        name = _GUNICORN_FLAGS.get(flag) or (
            flag[2:].replace("-", "_") if flag.startswith("--") else "")
        if flag in ours or name not in GUNICORN_SETTINGS:
            words_for_us.append(words[i])
        else:
            given: Any = value if eq else _GUNICORN_SWITCHES.get(flag, True)
            if not eq and flag not in _GUNICORN_SWITCHES and i + 1 < len(words) \
                    and not words[i + 1].startswith("-"):
                given = words[i + 1]
                i += 1
            theirs.append((flag, name, given))
        i += 1
    namespace = vars(build_parser(_cmd_args_parser(variable)).parse_args(words_for_us))
    layer = _namespace_layer(namespace, f"{variable}: ")
    if layer.pop("app", None) is not None:
        warn(f"{variable}: the application named there is ignored, as gunicorn does")
    for flag, name, given in theirs:
        translated = _translate_gunicorn(name, given, f"{variable}: {flag}", warn)
        if translated is not None:
            setting, converted = translated
            layer[setting] = _Raw(converted, f"{variable}: {flag}", python=True)
    return layer


def _own_flags() -> set[str]:
    """Every option string of wsgiloop's command line."""
    flags = {"-h", "--help", "--version"}
    for s in SETTINGS:
        if not s.positional:
            flags.update(s.flags, s.aliases, (flag for flag, _ in s.shortcuts))
    return flags


def _platform_layer(environ: Mapping[str, str]) -> _Layer:
    """gunicorn's fallbacks: ``PORT`` (bind on every interface) and ``WEB_CONCURRENCY``
    (workers), below every other source."""
    layer: _Layer = {}
    if environ.get("PORT", "").strip():
        layer["bind"] = _Raw([f"0.0.0.0:{environ['PORT'].strip()}"], "PORT")
    if environ.get("WEB_CONCURRENCY", "").strip():
        layer["workers"] = _Raw(environ["WEB_CONCURRENCY"].strip(), "WEB_CONCURRENCY")
    return layer


def _environment_layer(environ: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for s in SETTINGS:
        if s.env_var not in environ:
            continue
        raw: str | list[str] = environ[s.env_var]
        if s.append:
            try:
                raw = (s.env_split or _split_env_list)(environ[s.env_var])
            except ValueError as e:
                raise ConfigError(f"{s.env_var}: invalid value {environ[s.env_var]!r}: {e}")
        layer[s.name] = _Raw(raw, s.env_var)
    return layer


def _value(s: Setting, raw: _Raw) -> Any:
    if raw.python:
        return _convert_python(s, raw.value, raw.where)
    return _convert(s, raw.value, raw.where)


def load_settings(argv: Sequence[str], environ: Mapping[str, str], *,
                  cwd: str | os.PathLike[str] | None = None,
                  warnings: list[str] | None = None) -> tuple[Settings, str]:
    """Build the settings from all their sources (see the module docstring).

    ``cwd`` is where ``pyproject.toml``, ``gunicorn.conf.py`` and a relative ``-c`` path
    are looked for (default: the current directory).  Messages about settings that were
    ignored (gunicorn settings with no meaning here) are appended to ``warnings``.

    Returns the settings and the application spec (``APP``, ``WSGILOOP_APP``, ``app`` or
    gunicorn's ``wsgi_app`` in a config file; "" with --print-config and no application).
    Raises :class:`ConfigError` for a bad value, a bad config file or a missing APP.
    Usage errors on the command line (unknown option, missing option argument) and
    ``--help``/``--version`` exit through argparse with ``SystemExit`` (status 2, resp. 0),
    as argparse does.
    """
    base = os.getcwd() if cwd is None else os.fspath(cwd)
    warn = warnings.append if warnings is not None else (lambda message: None)
    command_line = _namespace_layer(vars(build_parser().parse_args(list(argv))))
    cmd_args = _cmd_args_layer(environ)
    gunicorn_cmd_args = _gunicorn_cmd_args_layer(environ, warn)
    environment = _environment_layer(environ)
    pyproject = _pyproject_layer(base)

    config_setting = SETTINGS_BY_NAME["config"]
    config: str | None = None
    config_source = SOURCE_DEFAULT
    for source, layer in ((SOURCE_COMMAND_LINE, command_line), (SOURCE_CMD_ARGS, cmd_args),
                          (SOURCE_GUNICORN_CMD_ARGS, gunicorn_cmd_args),
                          (SOURCE_ENVIRONMENT, environment), (SOURCE_PYPROJECT, pyproject)):
        if "config" in layer:
            config, config_source = _value(config_setting, layer["config"]), source
            break
    else:
        if os.path.isfile(os.path.join(base, DEFAULT_CONFIG_FILE)):
            config = DEFAULT_CONFIG_FILE
    config_file = _config_file_layer(config, base, warn) if config else {}

    layers = ((SOURCE_COMMAND_LINE, command_line), (SOURCE_CMD_ARGS, cmd_args),
              (SOURCE_GUNICORN_CMD_ARGS, gunicorn_cmd_args),
              (SOURCE_ENVIRONMENT, environment), (SOURCE_CONFIG_FILE, config_file),
              (SOURCE_PYPROJECT, pyproject), (SOURCE_PLATFORM, _platform_layer(environ)))
    values: dict[str, Any] = {"config": config}
    sources: dict[str, str] = {"config": config_source}
    wheres: dict[str, str] = {}
    app_spec: str | None = None
    for s in SETTINGS:
        if s.name == "config":
            continue
        winner = next(((source, layer[s.name]) for source, layer in layers
                       if s.name in layer), None)
        if winner is None:
            continue
        source, value = winner[0], _value(s, winner[1])
        if s.positional:
            app_spec = value
        else:
            values[s.name] = value
            sources[s.name] = source
            wheres[s.name] = winner[1].where
    if app_spec is None:
        if values.get("print_config"):
            app_spec = ""
        else:
            raise ConfigError("no application given: wsgiloop [OPTIONS] module:app "
                              "(see wsgiloop --help)")
    _check_tls_combination(values, wheres)
    return Settings._build(values, sources), app_spec


def _check_tls_combination(values: Mapping[str, Any], wheres: Mapping[str, str]) -> None:
    """Refuse TLS settings that would be silently ignored: without a certificate the
    server speaks plain HTTP, which a key or CA file given by mistake must not hide."""
    if not values.get("certfile"):
        for name in ("keyfile", "ca_certs", "cert_reqs", "ciphers"):
            if values.get(name):
                raise ConfigError(f"{wheres[name]}: needs --certfile (without a certificate "
                                  "wsgiloop serves plain HTTP)")
    elif values.get("cert_reqs") and not values.get("ca_certs"):
        raise ConfigError(f"{wheres['cert_reqs']}: client certificates need --ca-certs to "
                          "verify them")


def describe_settings(settings: Settings, app_spec: str) -> str:
    """``--print-config``: each setting, its value and where the value came from."""
    rows = [("app", repr(app_spec) if app_spec else "none", "")]
    for name in settings:
        value = getattr(settings, name)
        shown = "none" if value is None else oct(value) if name == "umask" else repr(value)
        rows.append((name, shown, settings.source(name)))
    width = max(len(name) for name, _, _ in rows)
    lines = []
    for name, value, source in rows:
        line = f"{name:<{width}} = {value}"
        lines.append(f"{line:<{width + 40}}  # {source}" if source else line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Documentation.
# ---------------------------------------------------------------------------------------


def _md_code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _doc_default(s: Setting) -> str:
    if s.positional:
        return "none: required, on the command line, in the environment or in a config file"
    if s.default is None and s.default_text is None:
        return "none"
    if s.default is None or s.default == []:
        return s.default_text or "none"
    return _md_code(s.shown_default)


def _spelled(s: Setting) -> str:
    if s.positional:
        return _md_code(s.flags[0]) + " (positional)"
    if s.kind == "flag":
        return ", ".join(_md_code(f) for f in s.flags)
    return ", ".join(_md_code(f"{f} {s.metavar}") for f in s.flags)


_DOC_INTRO = f"""\
Each setting can be given, from lowest to highest precedence:

1. by its default;
2. for `bind` and `workers` only, by gunicorn's fallbacks `PORT` (`0.0.0.0:$PORT`) and
   `WEB_CONCURRENCY`, which hosting platforms set;
3. in the `[tool.wsgiloop]` table of `pyproject.toml` in the current directory, with the
   setting names below (`workers = 4`, `bind = ["127.0.0.1:8000"]`; `max-requests` may be
   spelled with dashes);
4. in the config file named by `-c/--config` (or `./{DEFAULT_CONFIG_FILE}` when it exists
   and no config file is named): a Python file in gunicorn's style, module-level
   assignments with gunicorn's setting names or the names below (`workers = 4`,
   `keepalive = 2`), or a TOML file (name ending in `.toml`) with the names below;
5. in an environment variable `WSGILOOP_<NAME>`;
6. in `{GUNICORN_CMD_ARGS_VAR}`, then in `{CMD_ARGS_VAR}`: command-line arguments in one
   environment variable, split like a shell does
   (`{CMD_ARGS_VAR}="--workers 3 --access-log -"`);
7. on the command line.

The value from the highest of these wins whole: a repeatable option given on the command
line replaces the environment's or the config file's value rather than adding to it.
`wsgiloop --print-config APP` prints every value and where it came from.

How each of gunicorn's settings reads in a Python config file, and which ones wsgiloop
refuses or ignores (with a warning), is in
[migrating-from-gunicorn.md](migrating-from-gunicorn.md).  An unknown name in a config
file is an error; helper variables in a Python config file must start with `_`.

Sizes are bytes, optionally with a binary suffix: `64k` = 65536, `1m`, `1g`.  Seconds may
have a fraction.  Negative numbers are refused.  In a config file a flag is `true` or
`false`, a number may be written as a number, and a repeatable setting as a list.
"""


def render_settings_doc() -> str:
    """The markdown of ``docs/settings.md``."""
    out = [
        "<!-- Generated by `python -m wsgiloop.config > docs/settings.md`; do not edit. -->",
        "",
        "# wsgiloop settings",
        "",
        _DOC_INTRO,
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
            if s.name == "config":
                out.append("* Config file: no (but `config` in `[tool.wsgiloop]` names one)")
            else:
                gunicorn = [g for g in gunicorn_names_for(s.name) if g != s.name]
                also = "; gunicorn's name: " + ", ".join(_md_code(g) for g in gunicorn) \
                    if gunicorn else ""
                out.append(f"* Config file: {_md_code(s.name)}{also}")
            out.append(f"* Type: {s.kind}")
            out.append(f"* Default: {_doc_default(s)}")
            out += ["", s.help, ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_settings_doc(), end="")
