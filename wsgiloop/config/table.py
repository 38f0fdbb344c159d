"""The settings table: every setting declared once (:data:`SETTINGS`), and the immutable
:class:`Settings` built from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import validators as v
from .base import DEFAULT_CONFIG_FILE, ENV_PREFIX
from .validators import LOG_LEVELS, Validator


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
        "config", ("-c", "--config"), "Configuration", None, v.optional_path, kind="path",
        metavar="FILE", default_text=f"./{DEFAULT_CONFIG_FILE} if it exists, else none",
        help="Read settings from this file: a Python file in gunicorn's style (module-level "
             "assignments such as workers = 4, with gunicorn's or wsgiloop's setting names), "
             "'python:MODULE' for such a file found on sys.path, or a TOML file (name ending "
             "in .toml; wsgiloop's setting names).  A relative path is relative to the "
             "directory wsgiloop was started in.  Empty: read no config file, not even "
             f"./{DEFAULT_CONFIG_FILE}."),
    Setting(
        "check_config", ("--check-config",), "Configuration", False, v.boolean, kind="flag",
        help="Check the settings and import the application, then exit: status 0 if both "
             "are fine, else 2 with the error."),
    Setting(
        "print_config", ("--print-config",), "Configuration", False, v.boolean, kind="flag",
        help="Print every setting's value and where it came from (default, "
             "PORT/WEB_CONCURRENCY, pyproject.toml, config file, environment, "
             "GUNICORN_CMD_ARGS, WSGILOOP_CMD_ARGS, command line), then exit."),
    # Application -----------------------------------------------------------------------
    Setting(
        "app", ("APP",), "Application", None, v.app_spec, kind="app spec",
        help="The WSGI application to serve: 'module:app', 'package.module:attr.sub', "
             "'module:factory()' (called with no arguments) or 'module:factory(\"a\", "
             "debug=True)' (literal arguments); a bare 'module' means 'module:application', "
             "else 'module:app'.  The current directory (after --chdir) is on sys.path."),
    Setting(
        "interface", ("--interface",), "Application", "auto",
        v.choice(("auto", "wsgi", "native")), kind="choice", metavar="KIND",
        shortcuts=(("--wsgi", "wsgi"), ("--native", "native")),
        help="How to serve APP: 'wsgi' (a PEP 3333 callable), 'native' (a "
             "wsgiloop.web.Application, on the event loop), or 'auto': native for an "
             "Application, WSGI for anything else."),
    Setting(
        "chdir", ("--chdir",), "Application", None, v.optional_path, kind="path",
        metavar="DIR", default_text="none",
        help="Change to this directory before loading the application."),
    Setting(
        "pythonpath", ("--pythonpath",), "Application", None, v.path_list, kind="path list",
        metavar="DIRS", default_text="none",
        help="Comma-separated directories to put first on sys.path (relative ones are "
             "taken from the directory after --chdir), before the application is loaded."),
    Setting(
        "raw_env", ("-e", "--env"), "Application", [], v.raw_env, kind="KEY=VALUE",
        metavar="KEY=VALUE", append=True, default_text="none", env_split=v.env_words,
        help="Set an environment variable in the server processes before the application "
             "is loaded; repeat the flag for several.  In WSGILOOP_RAW_ENV, separate "
             "several with spaces, quoting as a shell does."),
    Setting(
        "root_path", ("--root-path",), "Application", "", v.root_path, kind="url path",
        metavar="PATH", default_text='""',
        help="The URL prefix the application is mounted at, given to it as SCRIPT_NAME. "
             "Empty, or starting with '/' and not ending with '/', e.g. '/api'."),
    # Binding ---------------------------------------------------------------------------
    Setting(
        "bind", ("-b", "--bind"), "Binding", ["127.0.0.1:8000"], v.bind, kind="address",
        metavar="ADDRESS", append=True,
        help="Address to listen on; repeat the flag to listen on several.  Forms: "
             "'HOST:PORT', '[IPv6]:PORT', ':PORT' or 'PORT' (all interfaces, IPv4 and IPv6 "
             "where the host has it), 'HOST' alone (port 8000), 'unix:PATH', 'fd://FD' "
             "(an inherited listening socket); gunicorn's 'tcp://' and 'unix://' prefixes "
             "are accepted too.  In the environment, separate several addresses with "
             "spaces or commas."),
    Setting(
        "backlog", ("--backlog",), "Binding", 2048, v.integer(1), kind="integer",
        metavar="N", help="The listen() backlog: connections the kernel queues unaccepted."),
    Setting(
        "fd", ("--fd",), "Binding", [], v.integer(0), kind="integer", metavar="N",
        append=True, default_text="none",
        help="Serve on the already-listening socket inherited as file descriptor N "
             "(repeatable), instead of --bind.  Sockets passed by systemd socket activation "
             "(LISTEN_FDS) are used the same way without this flag."),
    # Workers ---------------------------------------------------------------------------
    Setting(
        "workers", ("-w", "--workers"), "Workers", 1, v.integer(1), kind="integer",
        metavar="N",
        help="Worker processes, each with its own event loop, under a supervising master. "
             "TTIN and TTOU add and remove one."),
    Setting(
        "worker_connections", ("--worker-connections",), "Workers", 1000, v.integer(1),
        kind="integer", metavar="N",
        help="Most connections one worker holds open at once; past it the worker stops "
             "accepting, so new connections wait in the listen backlog for another worker."),
    Setting(
        "proc_name", ("-n", "--name"), "Workers", None, v.optional_name, metavar="NAME",
        default_text="the application",
        help="The name in the process titles: 'wsgiloop: master [NAME]', 'wsgiloop: "
             "worker N [NAME]' (shown when setproctitle is installed)."),
    Setting(
        "threads", ("--threads",), "Workers", 0, v.integer(0), kind="integer", metavar="N",
        help="Run the application on a pool of N threads per worker, the loop still doing "
             "all socket I/O; 0 runs it on the loop thread (fastest for quick requests)."),
    Setting(
        "timeout", ("-t", "--timeout"), "Workers", 30.0, v.seconds(True), kind="seconds",
        metavar="SECONDS",
        help="A worker whose loop sends no heartbeat for this long (an application that "
             "never returns) has its stack dumped to the error log and is replaced. "
             "0 disables the watchdog."),
    Setting(
        "request_timeout", ("--request-timeout",), "Workers", 0.0, v.seconds(True),
        kind="seconds", metavar="SECONDS",
        help="A single request running the application longer than this has its stack "
             "logged and its worker replaced. 0 disables it."),
    Setting(
        "max_requests", ("--max-requests",), "Workers", 0, v.integer(0), kind="integer",
        metavar="N",
        help="Replace a worker after it has served this many requests: it takes no "
             "new request then, finishes those under way and exits, while the master "
             "starts its replacement.  0 disables it."),
    Setting(
        "max_requests_jitter", ("--max-requests-jitter",), "Workers", 0, v.integer(0),
        kind="integer", metavar="N",
        help="Add a random 0..N to each worker's --max-requests, so workers do not all "
             "restart at once."),
    Setting(
        "max_rss", ("--max-rss",), "Workers", 0, v.size(0), kind="size", metavar="BYTES",
        help="Replace a worker, gracefully, once its resident memory passes this size "
             "(e.g. 512m). 0 disables it."),
    Setting(
        "preload", ("--preload",), "Workers", False, v.boolean, kind="flag",
        help="Import the application in the master before forking: faster worker start and "
             "shared memory, but HUP then restarts workers without re-importing the code."),
    Setting(
        "reuse_port", ("--reuse-port",), "Workers", False, v.boolean, kind="flag",
        help="Also give every worker its own SO_REUSEPORT listening socket per TCP address, "
             "balanced by the kernel, beside the shared one (which every worker accepts "
             "from with EPOLLEXCLUSIVE).  See the README for which to choose."),
    Setting(
        "pid", ("-p", "--pid"), "Workers", None, v.optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="Write the master's process id to this file."),
    Setting(
        "daemon", ("-D", "--daemon"), "Workers", False, v.boolean, kind="flag",
        shortcuts=(("--no-daemon", "false"),),
        help="Detach from the terminal: the command returns once the server serves (status "
             "0, having printed the addresses) or has failed to start (status 2 and the "
             "error), and the master goes on in the background.  Its stdin and stdout are "
             "/dev/null, its stderr the --error-log file if there is one, else /dev/null; "
             "use --pid to find it later."),
    Setting(
        "user", ("-u", "--user"), "Workers", None, v.optional_name, kind="string",
        default_text="none", metavar="USER",
        help="Switch to this user (name or id) after binding the sockets."),
    Setting(
        "group", ("-g", "--group"), "Workers", None, v.optional_name, kind="string",
        default_text="none", metavar="GROUP",
        help="Switch to this group (name or id) after binding the sockets."),
    Setting(
        "umask", ("-m", "--umask"), "Workers", None, v.umask, kind="octal", metavar="MASK",
        default_text="none",
        help="File mode creation mask for the server processes, e.g. 022."),
    # Logging ---------------------------------------------------------------------------
    Setting(
        "log_level", ("--log-level",), "Logging", "info", v.choice(LOG_LEVELS),
        kind="choice", metavar="LEVEL",
        help="Least severity written to the error log: " + ", ".join(LOG_LEVELS) + "."),
    Setting(
        "error_log", ("--error-log",), "Logging", "-", v.log_target, kind="path",
        metavar="FILE", aliases=("--error-logfile", "--log-file"), default_text="-",
        help="Where the error log goes: '-' for stderr, or a file to append to."),
    Setting(
        "access_log", ("--access-log",), "Logging", None, v.optional_path, kind="path",
        metavar="FILE", aliases=("--access-logfile",), default_text="none",
        help="Where the access log goes: '-' for stdout, or a file to append to.  Unset "
             "or empty: no access log."),
    Setting(
        "access_log_format", ("--access-log-format",), "Logging",
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
        v.access_log_format, kind="format", metavar="FORMAT", aliases=("--access-logformat",),
        help="The access log line, with gunicorn's atoms: h remote address, l '-', "
             "u remote user, t time, r request line, m method, U path (decoded), "
             "q query string, H protocol, s status, b and B response bytes, f referer, "
             "a user agent, T seconds, M milliseconds, D microseconds, L seconds with "
             "decimals, p process id, {name}i request header, {name}o response header, "
             "{key}e WSGI environ value.  The default is Apache's combined format."),
    Setting(
        "log_format", ("--log-format",), "Logging", "text", v.choice(("text", "json")),
        kind="choice", metavar="FORMAT",
        help="text: the error log's '[time] [pid] [LEVEL] message' lines and the access "
             "log's --access-log-format lines; json: one JSON object per line in both "
             "(fields in docs/logging.md), also to syslog."),
    Setting(
        "log_config", ("--log-config",), "Logging", None, v.optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="A logging config file in the ini format of logging.config.fileConfig "
             "(gunicorn's logconfig), applied in the master and the workers.  Loggers it "
             "names are entirely its own; gunicorn.error and gunicorn.access mean "
             "wsgiloop.error and wsgiloop.access."),
    Setting(
        "log_config_dict", ("--log-config-dict",), "Logging", None, v.log_config_dict,
        kind="dict", metavar="JSON", default_text="none",
        help="A logging dictConfig (gunicorn's logconfig_dict): a dict in a Python config "
             "file, a table in TOML, JSON text on the command line and in the environment.  "
             "Wins over --log-config-json and --log-config, as in gunicorn."),
    Setting(
        "log_config_json", ("--log-config-json",), "Logging", None, v.optional_path,
        kind="path", metavar="FILE", default_text="none",
        help="A JSON file holding a logging dictConfig (gunicorn's logconfig_json).  Wins "
             "over --log-config."),
    Setting(
        "log_syslog", ("--log-syslog",), "Logging", False, v.boolean, kind="flag",
        help="Send the error log to syslog too, and the access log (even without "
             "--access-log) unless --disable-redirect-access-to-syslog."),
    Setting(
        "log_syslog_to", ("--log-syslog-to",), "Logging", "udp://localhost:514",
        v.syslog_address, kind="string", metavar="ADDRESS",
        help="Where syslog listens: udp://HOST:PORT, tcp://HOST:PORT or "
             "unix://PATH[#dgram|#stream] (unix:///dev/log on most Linux hosts)."),
    Setting(
        "log_syslog_prefix", ("--log-syslog-prefix",), "Logging", None, v.optional_name,
        kind="string", metavar="PREFIX", default_text="--name, else APP",
        help="The syslog tag is wsgiloop.PREFIX.error or wsgiloop.PREFIX.access."),
    Setting(
        "log_syslog_facility", ("--log-syslog-facility",), "Logging", "user",
        v.choice(v.SYSLOG_FACILITIES), kind="choice", metavar="FACILITY",
        help="The syslog facility: " + ", ".join(v.SYSLOG_FACILITIES) + "."),
    Setting(
        "disable_redirect_access_to_syslog", ("--disable-redirect-access-to-syslog",),
        "Logging", False, v.boolean, kind="flag",
        help="With --log-syslog, keep the access log out of syslog."),
    # HTTP limits -----------------------------------------------------------------------
    Setting(
        "limit_request_line", ("--limit-request-line",), "HTTP limits", 8190, v.size(1),
        kind="size", metavar="BYTES",
        help="Longest request line (method, target and version) accepted; longer gets 414."),
    Setting(
        "limit_request_fields", ("--limit-request-fields",), "HTTP limits", 100,
        v.integer(1), kind="integer", metavar="N",
        help="Most header fields in one request; more gets 431."),
    Setting(
        "limit_request_field_size", ("--limit-request-field-size",), "HTTP limits", 8190,
        v.size(1), kind="size", metavar="BYTES", aliases=("--limit-request-field_size",),
        help="Longest single header field line; longer gets 431."),
    Setting(
        "limit_request_head", ("--limit-request-head",), "HTTP limits", 65536, v.size(1),
        kind="size", metavar="BYTES",
        help="Most bytes in the request line and all header fields together; more gets 431."),
    Setting(
        "max_body_size", ("--max-body-size",), "HTTP limits", 1 << 30, v.size(0),
        kind="size", metavar="BYTES", default_text="1073741824 = 1g",
        help="Largest request body accepted, after de-chunking; larger gets 413.  "
             "0 means no limit."),
    Setting(
        "spool_threshold", ("--spool-threshold",), "HTTP limits", 256 << 10, v.size(0),
        kind="size", metavar="BYTES", default_text="262144 = 256k",
        help="Request bodies larger than this are spooled to a temporary file instead of "
             "memory."),
    Setting(
        "spool_dir", ("--spool-dir",), "HTTP limits", None, v.optional_path, kind="path",
        metavar="DIR", default_text="the system temporary directory",
        help="Where spooled request bodies are written; checked to be a writable "
             "directory at start-up."),
    Setting(
        "parser", ("--parser",), "HTTP limits", "auto", v.parser_backend, kind="choice",
        metavar="BACKEND",
        help="The request parser: 'python' (pure Python, always there) or 'httptools' "
             "(llhttp, in C: pip install 'wsgiloop[fast]'; the same refusals, with the "
             "same statuses, docs/conformance.md).  'auto' is python: measured, httptools "
             "is not faster here."),
    # Timeouts --------------------------------------------------------------------------
    Setting(
        "header_timeout", ("--header-timeout",), "Timeouts", 10.0, v.seconds(False),
        kind="seconds", metavar="SECONDS",
        help="The whole request head must arrive within this many seconds, else the "
             "connection is closed."),
    Setting(
        "keepalive_timeout", ("--keep-alive",), "Timeouts", 5.0, v.seconds(False),
        kind="seconds", metavar="SECONDS", aliases=("--keepalive-timeout",),
        help="How long an idle keep-alive connection waits for its next request."),
    Setting(
        "body_timeout", ("--body-timeout",), "Timeouts", 30.0, v.seconds(False),
        kind="seconds", metavar="SECONDS",
        help="Most seconds without progress while reading a request body, else the "
             "connection is closed."),
    Setting(
        "body_min_rate", ("--body-min-rate",), "Timeouts", 512, v.size(0), kind="size",
        metavar="BYTES", default_text="512",
        help="Least average rate, in bytes per second, at which a request body must arrive "
             "once --body-timeout seconds have passed since it began; slower gets 408.  "
             "0 disables the check."),
    Setting(
        "send_timeout", ("--send-timeout",), "Timeouts", 30.0, v.seconds(False),
        kind="seconds", metavar="SECONDS",
        help="Most seconds a response may go without the client taking any of it; then "
             "the connection is closed and the application's iterable closed."),
    Setting(
        "graceful_timeout", ("--graceful-timeout",), "Timeouts", 30.0, v.seconds(True),
        kind="seconds", metavar="SECONDS",
        help="On TERM or INT, how long requests in flight may take to finish before their "
             "connections are closed."),
    # Server ----------------------------------------------------------------------------
    Setting(
        "server_header", ("--server-header",), "Server", "wsgiloop", v.header_value,
        kind="string", metavar="TEXT",
        help="Value of the Server response header; empty sends none."),
    Setting(
        "static", ("--static",), "Server", [], v.static_mapping, kind="mapping",
        metavar="PREFIX=DIR", append=True, default_text="none",
        help="Serve the files under DIR at URL PREFIX (e.g. /static=./staticfiles) "
             "before the application sees the request: sendfile, ETag, Last-Modified, "
             "byte ranges, an hour of caching.  Repeatable."),
    Setting(
        "reload", ("--reload",), "Server", False, v.boolean, kind="flag",
        help="For development: restart the workers when a .py file under the current "
             "directory changes (see --reload-engine).  A file with a syntax error is "
             "logged and the running workers keep serving."),
    Setting(
        "reload_engine", ("--reload-engine",), "Server", "auto", v.reload_engine,
        kind="choice", metavar="ENGINE",
        help="How --reload notices changes: 'inotify' waits for the kernel's notification "
             "(needs the watchfiles package), 'poll' checks the files' times each second, "
             "'auto' is inotify when watchfiles is installed, else poll."),
    Setting(
        "reload_extra_files", ("--reload-extra-file",), "Server", [], v.path, kind="path",
        metavar="FILE", append=True, default_text="none",
        help="With --reload, also restart the workers when this file changes (a template, "
             "a configuration file...).  Repeatable."),
    Setting(
        "certfile", ("--certfile",), "Server", None, v.optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="Serve HTTPS with this PEM certificate (chain); with --keyfile for its key."),
    Setting(
        "keyfile", ("--keyfile",), "Server", None, v.optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="The PEM private key of --certfile (if not inside the certificate file)."),
    Setting(
        "ca_certs", ("--ca-certs",), "Server", None, v.optional_path, kind="path",
        metavar="FILE", default_text="none",
        help="Require client certificates signed by these PEM CA certificates."),
    Setting(
        "cert_reqs", ("--cert-reqs",), "Server", None, v.cert_reqs, kind="choice",
        metavar="N", default_text="2 with --ca-certs, else 0",
        help="Client certificates (gunicorn's cert_reqs, Python's ssl.CERT_*): 0 none "
             "asked, 1 optional, 2 required; 1 and 2 need --ca-certs to verify them."),
    Setting(
        "ciphers", ("--ciphers",), "Server", None, v.ciphers, metavar="CIPHERS",
        default_text="Python's defaults",
        help="The TLS 1.2 cipher suites to offer, in OpenSSL's list syntax (for example "
             "ECDHE+AESGCM); TLS 1.3 suites are not affected."),
    Setting(
        "forwarded_allow_ips", ("--forwarded-allow-ips",), "Server", "127.0.0.1,::1,unix",
        v.proxy_list, kind="list", metavar="IPS",
        help="Comma-separated addresses or networks of trusted proxies, 'unix' for peers "
             "on a Unix socket, or '*'.  Only their Forwarded / X-Forwarded-For / -Proto / "
             "-Host headers (and PROXY headers) are believed: they set REMOTE_ADDR (the "
             "right-most untrusted hop), wsgi.url_scheme and HTTP_HOST."),
    Setting(
        "proxy_protocol", ("--proxy-protocol",), "Server", False, v.boolean, kind="flag",
        help="Expect a PROXY protocol v1 or v2 header (from HAProxy, say) at the start of "
             "each connection from a trusted proxy (--proxy-allow-from)."),
    Setting(
        "proxy_allow_ips", ("--proxy-allow-from",), "Server", "", v.proxy_list, kind="list",
        metavar="IPS", default_text="the --forwarded-allow-ips list",
        help="Comma-separated addresses or networks, 'unix' or '*': the peers whose PROXY "
             "protocol headers are believed, when they differ from --forwarded-allow-ips. "
             "Connections from other peers are served without a PROXY header."),
    Setting(
        "slow_callback_threshold", ("--slow-callback-threshold",), "Server", 1.0,
        v.seconds(True), kind="seconds", metavar="SECONDS",
        help="Warn, with the stack, when the event loop is blocked by one callback "
             "(such as the application) for longer than this.  0 disables the warning."),
    # Metrics ---------------------------------------------------------------------------
    Setting(
        "metrics_bind", ("--metrics-bind",), "Metrics", None, v.optional_bind,
        kind="address", metavar="ADDRESS", default_text="none",
        help="Serve /metrics (Prometheus text format: requests, durations, connections, "
             "bytes, worker restarts, memory, loop lag, summed over the workers by the "
             "master), /livez and /readyz (503 from the start of a stop) at this address: "
             "HOST:PORT or unix:PATH, never a --bind address.  See docs/metrics.md."),
    Setting(
        "statsd_host", ("--statsd-host",), "Metrics", None, v.statsd_address,
        metavar="ADDRESS", default_text="none",
        help="Send gunicorn's statsd metrics (gunicorn.requests, gunicorn.request.duration, "
             "gunicorn.request.status.CODE, gunicorn.workers, gunicorn.log.LEVEL) over UDP "
             "to HOST:PORT (HOST alone: port 8125), or to a datagram unix socket "
             "(unix:PATH or unix://PATH)."),
    Setting(
        "statsd_prefix", ("--statsd-prefix",), "Metrics", "", v.header_value,
        metavar="PREFIX", default_text="none",
        help="Put this in front of every statsd metric's name (a dot is added)."),
    Setting(
        "dogstatsd_tags", ("--dogstatsd-tags",), "Metrics", "", v.dogstatsd_tags,
        metavar="TAGS", default_text="none",
        help="Datadog (dogstatsd) tags added to every statsd metric, comma-separated: "
             "'env:prod,service:shop'."),
    *(Setting(name, ("--" + name.replace("_", "-"),), "Server hooks", None, v.hook_spec,
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
