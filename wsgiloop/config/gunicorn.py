"""What each of gunicorn's setting names means here, as a Python config file written for
gunicorn uses them: set one of ours, ignored with a warning, or refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import ConfigError
from .table import SETTINGS_BY_NAME


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
    "disable_redirect_access_to_syslog": _set("disable_redirect_access_to_syslog"),
    "access_log_format": _set("access_log_format"),
    "errorlog": _set("error_log"),
    "loglevel": _set("log_level"),
    "capture_output": _ignore("the application's stdout and stderr stay the server's; "
                              "use logging in the application to reach the error log"),
    "logger_class": _refuse("wsgiloop's loggers are the logging module's 'wsgiloop.error' "
                            "and 'wsgiloop.access'; configure them with --log-config, "
                            "logconfig_dict or logconfig_json instead",
                            "gunicorn.glogging.Logger"),
    "logconfig": _set("log_config"),
    "logconfig_dict": _set("log_config_dict"),
    "logconfig_json": _set("log_config_json"),
    "syslog_addr": _set("log_syslog_to"),
    "syslog": _set("log_syslog"),
    "syslog_prefix": _set("log_syslog_prefix"),
    "syslog_facility": _set("log_syslog_facility"),
    "enable_stdio_inheritance": _ignore("wsgiloop's --daemon keeps stderr only in the "
                                        "--error-log file"),
    "statsd_host": _set("statsd_host"),
    "dogstatsd_tags": _set("dogstatsd_tags"),
    "statsd_prefix": _set("statsd_prefix"),
    "enable_backlog_metric": _ignore("wsgiloop sends no gunicorn.backlog metric"),
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


def translate_gunicorn(name: str, value: Any, where: str,
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
