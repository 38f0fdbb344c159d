"""Logging set-up for the master and, through fork, every worker.

Promises this module keeps:

* ``wsgiloop.error`` writes to stderr or ``--error-log``, and ``wsgiloop.access`` to stdout
  or ``--access-log`` (disabled when it has nowhere to go); neither propagates to the
  root logger.  ``--log-format text`` (the default) writes ``[time] [pid] [LEVEL]
  message`` and bare access lines; ``--log-format json`` one JSON object per line
  (:class:`JSONFormatter`; the fields are listed in docs/logging.md).
* ``--log-syslog`` adds a syslog handler to the error log and, unless
  ``--disable-redirect-access-to-syslog``, to the access log (which then logs even
  without ``--access-log``), as gunicorn does.  Lines are tagged
  ``wsgiloop.PREFIX.error`` / ``wsgiloop.PREFIX.access``.
* A log config (``--log-config-dict``, else ``--log-config-json``, else ``--log-config``:
  gunicorn's order) is applied first.  A logger it names -- or whose parent it names,
  the root logger aside -- is entirely the config's; the one of wsgiloop's two loggers
  it does not name gets the handlers above.  ``gunicorn``, ``gunicorn.error`` and
  ``gunicorn.access`` in a config mean ``wsgiloop``, ``wsgiloop.error`` and
  ``wsgiloop.access``, so gunicorn's log configs work as they are.
* Every problem (a log file that cannot be opened, a syslog address that cannot be
  reached, a log config that cannot be read or applied) is a one-line
  :class:`ConfigError`.
* Handlers wsgiloop installed on its two loggers (its own, or a log config's) are
  replaced by the next :func:`configure_logging`; others (the application's) are left.
* :func:`reopen_log_files` (USR1) reopens every logger's files in place, the config's
  too, without reading any config again; :func:`configure_logging` (start, HUP) does it
  all again.
"""

from __future__ import annotations

import configparser
import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
from typing import Any, TextIO

from .config import ConfigError, Settings
from .logformat import (
    ERROR_LOG_DATEFMT,
    ERROR_LOG_FORMAT,
    JSONFormatter,
    access_log,
    error_log,
    parse_syslog_address,
)

#: gunicorn's logger names, as a log config written for gunicorn uses them.
GUNICORN_LOGGERS = {"gunicorn": "wsgiloop", "gunicorn.error": "wsgiloop.error",
                    "gunicorn.access": "wsgiloop.access"}

#: What a dict or JSON log config starts from (it replaces these keys, as gunicorn's
#: ``CONFIG_DEFAULTS`` are replaced): handlers named as gunicorn's, without touching the
#: root logger or wsgiloop's loggers.
DICT_CONFIG_DEFAULTS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"generic": {"format": ERROR_LOG_FORMAT, "datefmt": ERROR_LOG_DATEFMT}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
}

# ---------------------------------------------------------------------------------------
# Syslog.
# ---------------------------------------------------------------------------------------

def _probe_unix_socket(path: str, socktype: int | None) -> None:
    """Connect to the unix socket ``path`` as the syslog handler will, or raise OSError."""
    error: OSError | None = None
    for kind in [socktype] if socktype else [socket.SOCK_DGRAM, socket.SOCK_STREAM]:
        with socket.socket(socket.AF_UNIX, kind) as sock:
            try:
                sock.connect(path)
                return
            except OSError as e:
                error = e
    assert error is not None
    raise error


def _syslog_handler(settings: Settings, proc_name: str, which: str) -> logging.Handler:
    socktype, address = parse_syslog_address(settings.log_syslog_to)
    facility = logging.handlers.SysLogHandler.facility_names[settings.log_syslog_facility]
    try:
        if isinstance(address, str):
            _probe_unix_socket(address, socktype)  # the handler would fail silently
        handler = logging.handlers.SysLogHandler(address, facility, socktype)
    except OSError as e:
        raise ConfigError(f"--log-syslog-to {settings.log_syslog_to}: cannot reach syslog: "
                          f"{(e.strerror or str(e)).lower()}") from e
    prefix = settings.log_syslog_prefix or settings.proc_name or proc_name
    tag = f"wsgiloop.{prefix.replace(':', '.')}.{which}: "
    if settings.log_format == "json":
        handler.setFormatter(JSONFormatter(prefix=tag))
    else:
        handler.setFormatter(logging.Formatter(tag.replace("%", "%%") +
                                               "[%(process)d] %(message)s"))
    return handler


# ---------------------------------------------------------------------------------------
# Log configs.
# ---------------------------------------------------------------------------------------


def _our_name(name: str, seen: set[str], where: str) -> str:
    """A logger name from a config, gunicorn's names mapped to ours."""
    ours = GUNICORN_LOGGERS.get(name, name)
    if ours in seen:
        raise ConfigError(f"{where}: configures the logger {ours!r} twice (gunicorn's "
                          f"{name!r} is wsgiloop's {ours!r})")
    seen.add(ours)
    return ours


def _dict_config(config: Any, where: str) -> tuple[dict[str, Any], set[str]]:
    """The dictConfig to apply (defaults filled in, names mapped) and the loggers it
    names."""
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a dict (a logging dictConfig), not "
                          f"{type(config).__name__}")
    full = {**DICT_CONFIG_DEFAULTS, **config}
    loggers = full.get("loggers") or {}
    if not isinstance(loggers, dict):
        raise ConfigError(f"{where}: 'loggers' must be a dict")
    seen: set[str] = set()
    full["loggers"] = {_our_name(name, seen, where): value for name, value in loggers.items()}
    return full, seen


def _file_config(path: str, where: str) -> tuple[configparser.ConfigParser, set[str]]:
    """The ini config to apply (gunicorn's ``%(here)s`` and ``%(__file__)s`` defined,
    names mapped) and the loggers it names."""
    path = os.path.abspath(path)
    parser = configparser.ConfigParser({"here": os.path.dirname(path), "__file__": path})
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"{where}: cannot read it: {(e.strerror or str(e)).lower()}")
    except (configparser.Error, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: not a logging config file: {_one_line(e)}")
    if not parser.has_section("loggers"):
        raise ConfigError(f"{where}: not a logging config file: no [loggers] section")
    seen: set[str] = set()
    for key in parser.get("loggers", "keys", fallback="").split(","):
        section = f"logger_{key.strip()}"
        if key.strip() == "root" or not parser.has_section(section):
            continue  # fileConfig itself reports a missing section
        name = parser.get(section, "qualname", raw=True, fallback="")
        if name:
            parser.set(section, "qualname", _our_name(name, seen, where))
    return parser, seen


def _load_log_config(settings: Settings) -> tuple[str, Any, set[str]] | None:
    """``(where, config, named loggers)`` for the log config the settings give, if any."""
    if settings.log_config_dict:
        config, named = _dict_config(settings.log_config_dict, "--log-config-dict")
        return "--log-config-dict", config, named
    if settings.log_config_json:
        where = f"--log-config-json {settings.log_config_json}"
        try:
            with open(settings.log_config_json, encoding="utf-8") as f:
                loaded = json.load(f)
        except OSError as e:
            raise ConfigError(f"{where}: cannot read it: {(e.strerror or str(e)).lower()}")
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: not JSON: {_one_line(e)}")
        config, named = _dict_config(loaded, where)
        return where, config, named
    if settings.log_config:
        where = f"--log-config {settings.log_config}"
        parser, named = _file_config(settings.log_config, where)
        return where, parser, named
    return None


def _apply_log_config(where: str, config: Any) -> None:
    try:
        if isinstance(config, dict):
            logging.config.dictConfig(config)
        else:
            logging.config.fileConfig(config, disable_existing_loggers=False)
    except Exception as e:
        detail = _one_line(e) if not isinstance(e, KeyError) else f"missing {e}"
        cause = e.__cause__ or e.__context__
        if cause is not None and isinstance(e, ValueError):
            detail += f": {_one_line(cause)}"
        raise ConfigError(f"{where}: cannot apply it: {detail}") from e


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def _covered(name: str, named: set[str]) -> bool:
    """Whether a config naming ``named`` configures the logger ``name`` (or a parent)."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in named for i in range(1, len(parts) + 1))


# ---------------------------------------------------------------------------------------
# wsgiloop's own handlers.
# ---------------------------------------------------------------------------------------


def _stream_or_file(target: str, stream: TextIO, what: str) -> logging.Handler:
    if target == "-":
        return logging.StreamHandler(stream)
    try:
        return logging.FileHandler(target, mode="a", encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot open {what} {target!r}: {(e.strerror or str(e)).lower()}")


def _our_handlers(settings: Settings, proc_name: str, error_too: bool, access_too: bool
                  ) -> tuple[list[logging.Handler], list[logging.Handler]]:
    """The handlers for the error and the access log (those asked for); on failure,
    closes what it opened."""
    json_format = settings.log_format == "json"
    made: list[logging.Handler] = []
    error_handlers: list[logging.Handler] = []
    access_handlers: list[logging.Handler] = []
    try:
        if error_too:
            handler = _stream_or_file(settings.error_log, sys.stderr, "error log")
            handler.setFormatter(JSONFormatter() if json_format else
                                 logging.Formatter(ERROR_LOG_FORMAT, ERROR_LOG_DATEFMT))
            made.append(handler)
            error_handlers.append(handler)
        if access_too and settings.access_log is not None:
            handler = _stream_or_file(settings.access_log, sys.stdout, "access log")
            handler.setFormatter(JSONFormatter() if json_format else
                                 logging.Formatter("%(message)s"))
            made.append(handler)
            access_handlers.append(handler)
        if settings.log_syslog:
            if error_too:
                handler = _syslog_handler(settings, proc_name, "error")
                made.append(handler)
                error_handlers.append(handler)
            if access_too and not settings.disable_redirect_access_to_syslog:
                handler = _syslog_handler(settings, proc_name, "access")
                made.append(handler)
                access_handlers.append(handler)
    except ConfigError:
        for handler in made:
            handler.close()
        raise
    for handler in made:
        handler._wsgiloop = True  # type: ignore[attr-defined]
    return error_handlers, access_handlers


def _drop_our_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if getattr(handler, "_wsgiloop", False):
            logger.removeHandler(handler)
            handler.close()


def configure_logging(settings: Settings, proc_name: str = "wsgiloop") -> None:
    """Set up logging from the settings (see the module docstring); again on each call.

    ``proc_name`` names the syslog tag when neither ``--log-syslog-prefix`` nor
    ``--name`` does (gunicorn uses the application's name).  Raises
    :class:`ConfigError` with a one-line message."""
    loaded = _load_log_config(settings)  # read and checked before anything changes
    for logger in (error_log, access_log):
        _drop_our_handlers(logger)
    named: set[str] = set()
    if loaded is not None:
        where, config, named = loaded
        _apply_log_config(where, config)
    error_ours = not _covered(error_log.name, named)
    access_ours = not _covered(access_log.name, named)
    for logger, ours in ((error_log, error_ours), (access_log, access_ours)):
        if not ours:  # the config's: replaced on the next call, even without a config
            for handler in logger.handlers:
                handler._wsgiloop = True  # type: ignore[attr-defined]
    error_handlers, access_handlers = _our_handlers(settings, proc_name, error_ours,
                                                    access_ours)
    if error_ours:
        error_log.setLevel(settings.log_level.upper())
        error_log.propagate = False
        error_log.disabled = False
        for handler in error_handlers:
            error_log.addHandler(handler)
    if access_ours:
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
        access_log.disabled = not access_handlers
        for handler in access_handlers:
            access_log.addHandler(handler)


def check_log_config(settings: Settings) -> None:
    """Read and check the log config the settings name, without applying it
    (``--check-config``); raises :class:`ConfigError`."""
    _load_log_config(settings)


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            found[id(handler)] = handler
    return list(found.values())


def reopen_log_files() -> None:
    """USR1: every logger's log files are reopened where they are (after a rotation the
    new file is written), wsgiloop's and the log config's alike.  A file that cannot be
    reopened keeps its old descriptor, with a warning on the error log."""
    for handler in _all_handlers():
        if not isinstance(handler, logging.FileHandler) or handler.stream is None:
            continue
        try:
            fresh = open(handler.baseFilename, "a", encoding=handler.encoding,
                         errors=handler.errors)
        except OSError as e:
            error_log.warning("USR1: cannot reopen %s: %s", handler.baseFilename,
                              (e.strerror or str(e)).lower())
            continue
        handler.acquire()
        try:
            old, handler.stream = handler.stream, fresh
        finally:
            handler.release()
        old.close()
