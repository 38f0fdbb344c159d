"""The ``wsgiloop`` command: settings, logging, application, sockets, then serve.

Promises this module keeps:

* Every expected failure -- a bad setting, a bad ``--chdir``, a log file that cannot
  be opened, an application that cannot be loaded, an address that cannot be bound --
  prints exactly one line, ``wsgiloop: error: <message>``, to stderr and exits 2, with
  no traceback (with ``--log-level debug`` the underlying traceback is logged first).
  Usage errors are argparse's: a usage line and an error line, exit 2.
* Logging: ``wsgiloop.error`` writes ``[time] [pid] [LEVEL] message`` to stderr or the
  ``--error-log`` file; ``wsgiloop.access`` writes bare lines to stdout or the
  ``--access-log`` file, and is disabled when there is no access log.  Neither
  propagates to the root logger.
* The serving layer is imported only once everything above has succeeded.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .config import ConfigError, Settings, load_settings, unknown_env_vars
from .loader import AppLoadError, load_app, prepend_sys_path
from .netutil import (
    BindError,
    bind_sockets,
    close_sockets,
    inherited_sockets,
    parse_bind,
    socket_url,
    systemd_fds,
)

ERROR_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
ERROR_LOG_DATEFMT = "%Y-%m-%d %H:%M:%S %z"

error_log = logging.getLogger("wsgiloop.error")
access_log = logging.getLogger("wsgiloop.access")


def _handler(target: str, stream: TextIO, what: str) -> logging.Handler:
    if target == "-":
        handler: logging.Handler = logging.StreamHandler(stream)
    else:
        try:
            handler = logging.FileHandler(target, mode="a", encoding="utf-8")
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            raise ConfigError(f"cannot open {what} {target!r}: {reason}")
    handler._wsgiloop = True  # type: ignore[attr-defined]
    return handler


def _drop_our_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if getattr(handler, "_wsgiloop", False):
            logger.removeHandler(handler)
            handler.close()


def configure_logging(settings: Settings) -> None:
    """Set up ``wsgiloop.error`` and ``wsgiloop.access`` from the settings.

    Raises :class:`ConfigError` if a log file cannot be opened.  Calling it again
    replaces the handlers a previous call installed.
    """
    error_handler = _handler(settings.error_log, sys.stderr, "error log")
    error_handler.setFormatter(logging.Formatter(ERROR_LOG_FORMAT, ERROR_LOG_DATEFMT))
    access_handler = None
    if settings.access_log is not None:
        try:
            access_handler = _handler(settings.access_log, sys.stdout, "access log")
        except ConfigError:
            error_handler.close()
            raise
        access_handler.setFormatter(logging.Formatter("%(message)s"))

    _drop_our_handlers(error_log)
    error_log.addHandler(error_handler)
    error_log.setLevel(settings.log_level.upper())
    error_log.propagate = False

    _drop_our_handlers(access_log)
    access_log.propagate = False
    if access_handler is None:
        access_log.disabled = True
    else:
        access_log.disabled = False
        access_log.setLevel(logging.INFO)
        access_log.addHandler(access_handler)


def _fail(error: Exception) -> int:
    cause = error.__cause__
    if cause is not None and error_log.isEnabledFor(logging.DEBUG) and error_log.handlers:
        error_log.debug("details:", exc_info=cause)
    print(f"wsgiloop: error: {error}", file=sys.stderr, flush=True)
    return 2


def _listening_sockets(settings: Settings) -> list:
    """Inherited sockets (``--fd``, systemd's ``LISTEN_FDS``), else the bound ``--bind``."""
    fds = list(settings.fd) or systemd_fds(os.environ, os.getpid())
    if fds:
        return inherited_sockets(fds)
    return bind_sockets([parse_bind(b) for b in settings.bind], settings.backlog,
                        reuse_port=settings.reuse_port)


def _drop_privileges(settings: Settings) -> None:
    """Switch to ``--group`` and ``--user`` (after binding, which may need root)."""
    import grp
    import pwd

    if settings.group is not None:
        try:
            gid = int(settings.group) if settings.group.isdigit() else \
                grp.getgrnam(settings.group).gr_gid
            os.setgid(gid)
            os.setgroups([gid])
        except (KeyError, OSError) as e:
            raise ConfigError(f"cannot switch to group {settings.group!r}: {e}")
    if settings.user is not None:
        try:
            uid = int(settings.user) if settings.user.isdigit() else \
                pwd.getpwnam(settings.user).pw_uid
            if settings.group is None:
                os.setgid(pwd.getpwuid(uid).pw_gid)
            os.setuid(uid)
        except (KeyError, OSError) as e:
            raise ConfigError(f"cannot switch to user {settings.user!r}: {e}")


def _announce(sockets: list) -> None:
    for sock in sockets:
        error_log.info("Listening at: %s (%d)", socket_url(sock), os.getpid())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wsgiloop`` command; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    sockets: list = []
    try:
        settings, app_spec = load_settings(args, os.environ)
        if settings.umask is not None:
            os.umask(settings.umask)
        if settings.chdir is not None:
            try:
                os.chdir(settings.chdir)
            except OSError as e:
                reason = (e.strerror or str(e)).lower()
                raise ConfigError(f"cannot change directory to {settings.chdir!r}: {reason}")
        prepend_sys_path(os.getcwd())
        configure_logging(settings)
        for name in unknown_env_vars(os.environ):
            error_log.warning("ignoring %s: no such setting", name)
        preloaded = load_app(app_spec) if settings.preload else None
        sockets = _listening_sockets(settings)
        _drop_privileges(settings)
    except (ConfigError, AppLoadError, BindError) as e:
        close_sockets(sockets)
        return _fail(e)
    except KeyboardInterrupt:
        close_sockets(sockets)
        return 130

    from .serving import error_stream, run_worker
    from .workers.arbiter import Arbiter, BootError

    def load() -> object:
        return preloaded if preloaded is not None else load_app(app_spec)

    def reload() -> Settings:
        fresh, _ = load_settings(args, os.environ)
        configure_logging(fresh)
        return fresh

    def reopen_logs() -> None:
        configure_logging(arbiter.settings)

    arbiter = Arbiter(settings, sockets,
                      lambda worker: run_worker(worker, arbiter.settings, sockets, load,
                                                reopen_logs),
                      app_spec, reload=reload, reopen_logs=reopen_logs,
                      reexec_argv=["-m", "wsgiloop", *args], error_stream=error_stream(),
                      on_first_ready=lambda: _announce(sockets))
    try:
        return arbiter.run()
    except BootError as e:
        return _fail(e)
    finally:
        if arbiter.handed_over:
            for sock in sockets:
                sock.close()  # the new master serves these (and their unix socket files)
        else:
            close_sockets(sockets)
