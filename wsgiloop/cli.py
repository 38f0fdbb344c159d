"""The ``wsgiloop`` command: settings, logging, application, sockets, then serve.

Promises this module keeps:

* Every expected failure -- a bad setting, a bad ``--chdir``, a log file that cannot
  be opened, an application that cannot be loaded, an address that cannot be bound --
  prints exactly one line, ``wsgiloop: error: <message>``, to stderr and exits 2, with
  no traceback (with ``--log-level debug`` the underlying traceback is logged first).
  Usage errors are argparse's: a usage line and an error line, exit 2.
* Logging is set up (:mod:`wsgiloop.logsetup`) in the master before any worker forks,
  set up again on HUP, and its files reopened on USR1.
* The serving layer is imported only once everything above has succeeded.
* Settings come from every source :func:`load_settings` reads (pyproject.toml, a config
  file, the environment, WSGILOOP_CMD_ARGS, the command line); the config file and
  pyproject.toml are looked for in the directory the command started in, also on HUP,
  and a USR2 re-exec starts from there too.  ``--env`` and ``--pythonpath`` are applied
  before the application is imported, and again on HUP.
* ``--daemon`` detaches once the sockets are bound (so a bind error is still reported
  by the command), and the command exits only when the detached master serves (0, with
  the addresses) or has failed to start (2, with the error).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .config import (
    DAEMON_MASTER_VAR,
    ConfigError,
    Settings,
    describe_settings,
    load_settings,
    unknown_env_vars,
)
from .loader import AppLoadError, load_app, prepend_sys_path
from .logsetup import check_log_config, configure_logging, reopen_log_files
from .netutil import (
    BindError,
    bind_sockets,
    close_sockets,
    inherited_sockets,
    parse_bind,
    socket_url,
    systemd_fds,
)
from .workers.hooks import HOOK_NAMES, Hooks

error_log = logging.getLogger("wsgiloop.error")


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


def _master_metrics(settings: Settings) -> Any:
    """The master's metrics (--metrics-bind bound now, beside the --bind sockets), or
    None; imported only when asked for."""
    if not settings.metrics_bind and not settings.statsd_host:
        return None
    from .metrics import master_metrics

    return master_metrics(settings)


def _check_paths(settings: Settings) -> None:
    """Files and directories the settings name, checked before anything is bound, so a
    typo is one error line naming the setting and the path rather than a worker failure
    (or a traceback) later."""
    if settings.pid:
        directory = os.path.dirname(os.path.abspath(settings.pid))
        if not os.path.isdir(directory):
            raise ConfigError(f"--pid {settings.pid}: no such directory: {directory}")
        if not os.access(directory, os.W_OK):
            raise ConfigError(f"--pid {settings.pid}: directory not writable: {directory}")
    for mapping in settings.static:
        directory = mapping.partition("=")[2]
        if not os.path.isdir(directory):
            raise ConfigError(f"--static {mapping}: no such directory: {directory}")
    for name in ("certfile", "keyfile", "ca_certs"):
        path = getattr(settings, name)
        if path and not os.path.isfile(path):
            raise ConfigError(f"--{name.replace('_', '-')} {path}: no such file")
    if settings.certfile:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(settings.certfile, settings.keyfile)
        except (OSError, ssl.SSLError) as e:
            files = f"--certfile {settings.certfile}" + (
                f" with --keyfile {settings.keyfile}" if settings.keyfile else "")
            raise ConfigError(f"{files}: cannot load the certificate and its key: "
                              f"{e.strerror or e}") from e
        if settings.ca_certs:
            try:
                context.load_verify_locations(settings.ca_certs)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"--ca-certs {settings.ca_certs}: cannot load the CA "
                                  f"certificates: {e.strerror or e}") from e


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


def _announce(sockets: list, scheme: str) -> None:
    for sock in sockets:
        error_log.info("Listening at: %s (%d)", socket_url(sock, scheme), os.getpid())


def _apply_process_settings(settings: Settings) -> None:
    """``--env`` into os.environ and ``--pythonpath`` onto sys.path, before the app loads."""
    for item in settings.raw_env:
        key, _, value = item.partition("=")
        os.environ[key] = value
    for path in reversed(settings.pythonpath or []):
        prepend_sys_path(os.path.abspath(path))


class _DaemonNotice:
    """The pipe on which a daemonized master tells the command that started it whether it
    serves: ``ready PID`` or ``error MESSAGE``; closing it unsaid means it failed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: str) -> None:
        if self.fd < 0:
            return
        try:
            os.write(self.fd, message.encode("utf-8", "replace") + b"\n")
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        """Close it unsaid: in a worker, which has nothing to say."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _wait_for_daemon(read_fd: int, middle: int, settings: Settings, sockets: list) -> int:
    """In the command the user ran: report what the daemon says; the exit status."""
    configure_logging(settings.replace(  # to the terminal, whatever the daemon's logs are
        error_log="-", access_log=None, log_syslog=False, log_config=None,
        log_config_dict=None, log_config_json=None, log_format="text"))
    chunks = []
    while chunk := os.read(read_fd, 4096):
        chunks.append(chunk)
    os.waitpid(middle, 0)
    word, _, rest = b"".join(chunks).decode("utf-8", "replace").strip().partition(" ")
    if word == "ready" and rest.isdigit():
        for sock in sockets:
            error_log.info("Listening at: %s (%s)", socket_url(
                sock, "https" if settings.certfile else "http"), rest)
        error_log.info("wsgiloop runs in the background, master pid %s", rest)
        return 0
    message = rest if word == "error" else \
        "the server stopped before it was ready (see its error log)"
    print(f"wsgiloop: error: {message}", file=sys.stderr, flush=True)
    return 2


def _daemonize(settings: Settings, sockets: list) -> _DaemonNotice:
    """Detach (fork, setsid, fork) and return, in the daemon, the pipe to the command.

    The command itself waits for the daemon to serve or fail, then exits (os._exit: the
    sockets it holds belong to the daemon now)."""
    for name, target in (("--error-log", settings.error_log), ("--access-log",
                                                               settings.access_log)):
        if target == "-":
            error_log.warning("--daemon: the %s goes to /dev/null; give %s FILE to keep it",
                              name.removeprefix("--").replace("-", " "), name)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle:
        os.close(write_fd)
        status = 2
        try:
            status = _wait_for_daemon(read_fd, middle, settings, sockets)
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(status)
    os.close(read_fd)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.environ[DAEMON_MASTER_VAR] = str(os.getpid())
    null = os.open(os.devnull, os.O_RDWR)
    err = null
    if settings.error_log != "-":
        try:
            err = os.open(settings.error_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            pass
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    for fd in {null, err}:
        os.close(fd)
    return _DaemonNotice(write_fd)


def _warn_to_stderr(warnings: list[str]) -> None:
    for message in warnings:
        print(f"wsgiloop: warning: {message}", file=sys.stderr, flush=True)


# Re-executing (USR2) from the directory this command started in, whatever --chdir did.
_REEXEC_CODE = ("import os, sys; os.chdir(sys.argv.pop(1)); "
                "from wsgiloop.cli import main; raise SystemExit(main(sys.argv[1:]))")


def _load_hooks(settings: Settings) -> Hooks:
    """The server hooks the settings name, imported now (``module:function`` ones)."""
    functions = {}
    for name in HOOK_NAMES:
        value = getattr(settings, name)
        if isinstance(value, str):
            try:
                value = load_app(value)
            except AppLoadError as e:
                raise ConfigError(f"--{name.replace('_', '-')}: {e}") from None
        functions[name] = value
    return Hooks(functions)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wsgiloop`` command; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    start_dir = os.getcwd()
    sockets: list = []
    metrics: Any = None
    notice: _DaemonNotice | None = None
    try:
        warnings: list[str] = []
        settings, app_spec = load_settings(args, os.environ, cwd=start_dir,
                                           warnings=warnings)
        if settings.print_config:
            _warn_to_stderr(warnings)
            print(describe_settings(settings, app_spec), flush=True)
            return 0
        if settings.umask is not None:
            os.umask(settings.umask)
        if settings.chdir is not None:
            try:
                os.chdir(settings.chdir)
            except OSError as e:
                reason = (e.strerror or str(e)).lower()
                raise ConfigError(f"cannot change directory to {settings.chdir!r}: {reason}")
        prepend_sys_path(os.getcwd())
        _check_paths(settings)
        _apply_process_settings(settings)
        if settings.check_config:
            _warn_to_stderr(warnings + [f"ignoring {name}: no such setting"
                                        for name in unknown_env_vars(os.environ)])
            check_log_config(settings)
            load_app(app_spec)
            return 0
        configure_logging(settings, app_spec)
        if settings.config:
            error_log.debug("settings from config file %s", settings.config)
        for message in warnings:
            error_log.warning("%s", message)
        for name in unknown_env_vars(os.environ):
            error_log.warning("ignoring %s: no such setting", name)
        preloaded = load_app(app_spec) if settings.preload else None
        hooks = _load_hooks(settings)
        sockets = _listening_sockets(settings)
        metrics = _master_metrics(settings)
        # Everything the master and the workers import comes in now: after switching
        # users, the Python installation may no longer be readable.  Without a switch,
        # what only some settings need stays out of a plain-HTTP WSGI worker's memory
        # (ssl alone costs each worker megabytes).
        from . import serving  # noqa: F401
        from .workers import arbiter as _arbiter  # noqa: F401
        switching = settings.user is not None or settings.group is not None
        if switching or settings.certfile:
            from . import tlsstream  # noqa: F401
        if switching or settings.static or settings.interface == "native":
            from . import web  # noqa: F401
        _drop_privileges(settings)
        if settings.daemon:
            if os.environ.get(DAEMON_MASTER_VAR) == str(os.getppid()):
                os.environ[DAEMON_MASTER_VAR] = str(os.getpid())  # re-executed: detached
            else:
                notice = _daemonize(settings, sockets)
    except (ConfigError, AppLoadError, BindError) as e:
        close_sockets(sockets)
        if metrics is not None:
            metrics.close()
        return _fail(e)
    except KeyboardInterrupt:
        close_sockets(sockets)
        if metrics is not None:
            metrics.close()
        return 130

    from .serving import error_stream, run_worker
    from .workers.arbiter import Arbiter, BootError
    from .workers.reloader import SourceWatcher

    def load() -> object:
        return preloaded if preloaded is not None else load_app(app_spec)

    def reload() -> Settings:
        messages: list[str] = []
        fresh, _ = load_settings(args, os.environ, cwd=start_dir, warnings=messages)
        _apply_process_settings(fresh)
        try:
            configure_logging(fresh, app_spec)
        except ConfigError:
            configure_logging(arbiter.settings, app_spec)  # as it was: it worked before
            raise
        for message in messages:
            error_log.warning("%s", message)
        arbiter.hooks = _load_hooks(fresh)
        return fresh

    def work(worker: Any) -> int:
        if notice is not None:
            notice.close()  # the master's, not the worker's, to send
        arbiter.hooks.call("post_fork", arbiter, worker)
        return run_worker(worker, arbiter.settings, sockets, load, reopen_log_files,
                          hooks=arbiter.hooks, master=arbiter)

    def first_ready() -> None:
        _announce(sockets, "https" if arbiter.settings.certfile else "http")
        if metrics is not None:
            for sock in metrics.listeners:
                error_log.info("Metrics at: %s (/metrics, /livez, /readyz) (%d)",
                               socket_url(sock, "http"), os.getpid())
        if notice is not None:
            notice.send(f"ready {os.getpid()}")

    reexec_argv = ["-m", "wsgiloop", *args] if os.getcwd() == start_dir else \
        ["-c", _REEXEC_CODE, start_dir, *args]
    watcher = SourceWatcher([os.getcwd()], engine=settings.reload_engine,
                            extra_files=settings.reload_extra_files) if settings.reload else None
    if watcher is not None:
        error_log.info("reloading on changes (%s): .py files under %s%s", watcher.engine,
                       os.getcwd(), "".join(f", {f}" for f in sorted(watcher.extra_files)))
    arbiter = Arbiter(settings, sockets, work, settings.proc_name or app_spec, reload=reload,
                      reopen_logs=reopen_log_files, reexec_argv=reexec_argv,
                      error_stream=error_stream, on_first_ready=first_ready,
                      watcher=watcher, hooks=hooks, metrics=metrics)
    try:
        return arbiter.run()
    except BootError as e:
        if notice is not None:
            notice.send(f"error {e}")
        return _fail(e)
    finally:
        if notice is not None:
            notice.close()
        if arbiter.handed_over:
            for sock in sockets:
                sock.close()  # the new master serves these (and their unix socket files)
        else:
            close_sockets(sockets)
