"""Config files (gunicorn-style Python, TOML, pyproject's [tool.wsgiloop]), the precedence
of every source, WSGILOOP_CMD_ARGS, gunicorn's names and flags, --daemon, --check-config
and --print-config."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from wsgiloop.config import (
    CMD_ARGS_VAR,
    DAEMON_MASTER_VAR,
    GUNICORN_SETTINGS,
    SETTINGS,
    SETTINGS_BY_NAME,
    ConfigError,
    Settings,
    describe_settings,
    gunicorn_names_for,
    load_settings,
    unknown_env_vars,
)

ROOT = Path(__file__).resolve().parent.parent
MIGRATING = ROOT / "docs" / "migrating-from-gunicorn.md"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def load(tmp_path: Path, *argv: str, env: dict | None = None,
         warnings: list | None = None) -> Settings:
    return load_settings(["app:app", *argv], env or {}, cwd=tmp_path, warnings=warnings)[0]


def error(tmp_path: Path, *argv: str, env: dict | None = None, app: str = "app:app") -> str:
    with pytest.raises(ConfigError) as info:
        load_settings([app, *argv] if app else list(argv), env or {}, cwd=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    return message


GUNICORN_CONF = """
    import multiprocessing
    import os

    bind = "0.0.0.0:8000"
    workers = 4
    accesslog = "-"
    loglevel = "debug"
    timeout = 30
    keepalive = 2
    limit_request_field_size = 4096
    access_log_format = '%(h)s "%(r)s" %(s)s %(D)s'
    raw_env = ["DJANGO_SETTINGS_MODULE=mysite.settings", "GREETING=hello world"]
    errorlog = "-"
    pidfile = "/tmp/app.pid"
    preload_app = True
    graceful_timeout = 20
    max_requests = 1000
    max_requests_jitter = 50
    backlog = 512
    threads = 4
    chdir = "."
    umask = 0o027
    _cpus = multiprocessing.cpu_count()

    def _helper():
        return os.getpid()
"""


# --- gunicorn-style Python config files -----------------------------------------------


def test_a_gunicorn_config_file_maps_onto_our_settings(tmp_path):
    write(tmp_path / "gunicorn.conf.py", GUNICORN_CONF)
    s = load(tmp_path, "-c", "gunicorn.conf.py")
    assert s.bind == ["0.0.0.0:8000"]
    assert s.workers == 4
    assert s.access_log == "-"
    assert s.log_level == "debug"
    assert s.timeout == 30.0
    assert s.keepalive_timeout == 2.0
    assert s.limit_request_field_size == 4096
    assert s.access_log_format == '%(h)s "%(r)s" %(s)s %(D)s'
    assert s.raw_env == ["DJANGO_SETTINGS_MODULE=mysite.settings", "GREETING=hello world"]
    assert s.pid == "/tmp/app.pid"
    assert s.preload is True
    assert (s.graceful_timeout, s.max_requests, s.max_requests_jitter) == (20.0, 1000, 50)
    assert (s.backlog, s.threads, s.chdir, s.umask) == (512, 4, ".", 0o027)
    for name in ("bind", "workers", "keepalive_timeout", "raw_env", "umask"):
        assert s.source(name) == "config file"
    assert s.source("max_body_size") == "default"
    assert s.config == "gunicorn.conf.py" and s.source("config") == "command line"


def test_gunicorn_conf_py_in_the_current_directory_is_read_by_default(tmp_path):
    write(tmp_path / "gunicorn.conf.py", "workers = 3\n")
    s = load(tmp_path)
    assert s.workers == 3 and s.source("workers") == "config file"
    assert s.config == "gunicorn.conf.py" and s.source("config") == "default"
    # An empty --config reads no config file at all.
    s = load(tmp_path, "--config", "")
    assert s.workers == 1 and s.config is None
    assert load(tmp_path, env={"WSGILOOP_CONFIG": ""}).workers == 1


def test_our_own_names_work_in_a_python_config_file_too(tmp_path):
    write(tmp_path / "conf.py", """
        max_rss = "512m"
        keepalive_timeout = 7
        server_header = ""
        bind = ["127.0.0.1:1", "unix:/tmp/x.sock"]
    """)
    s = load(tmp_path, "-c", "conf.py")
    assert (s.max_rss, s.keepalive_timeout, s.server_header) == (512 << 20, 7.0, "")
    assert s.bind == ["127.0.0.1:1", "unix:/tmp/x.sock"]


def test_config_file_path_is_relative_to_the_start_directory(tmp_path):
    write(tmp_path / "deploy" / "gunicorn.py", "workers = 6\n")
    assert load(tmp_path, "-c", "deploy/gunicorn.py").workers == 6
    assert load(tmp_path, "-c", str(tmp_path / "deploy" / "gunicorn.py")).workers == 6


def test_python_module_config(tmp_path):
    write(tmp_path / "myconf" / "__init__.py", "")
    write(tmp_path / "myconf" / "web.py", "workers = 5\nwsgi_app = 'site:app'\n")
    settings, app = load_settings(["-c", "python:myconf.web"], {}, cwd=tmp_path)
    assert (settings.workers, app) == (5, "site:app")
    assert "config module 'nope.nothing' not found" in error(tmp_path, "-c",
                                                             "python:nope.nothing")
    assert str(tmp_path) not in sys.path


def test_the_application_can_come_from_a_config_file(tmp_path):
    write(tmp_path / "g.py", "wsgi_app = 'myproject.wsgi:application'\n")
    assert load_settings(["-c", "g.py"], {}, cwd=tmp_path)[1] == "myproject.wsgi:application"
    assert load_settings(["other:app", "-c", "g.py"], {}, cwd=tmp_path)[1] == "other:app"
    write(tmp_path / "w.toml", "app = 'site:app'\n")
    assert load_settings(["-c", "w.toml"], {}, cwd=tmp_path)[1] == "site:app"


def test_unknown_name_is_one_line_naming_file_and_name(tmp_path):
    write(tmp_path / "g.py", "workers = 2\nwrokers = 3\n")
    message = error(tmp_path, "-c", "g.py")
    assert message.startswith("g.py: wrokers: unknown setting")
    assert "did you mean 'workers'?" in message
    write(tmp_path / "h.py", "cpus = 4\n")
    assert "a helper variable must start with '_'" in error(tmp_path, "-c", "h.py")


def test_helpers_imports_and_classes_are_not_settings(tmp_path):
    write(tmp_path / "g.py", """
        import os
        from pathlib import Path

        class Base:
            pass

        def compute():
            return 2

        _workers = compute()
        workers = _workers
    """)
    assert load(tmp_path, "-c", "g.py").workers == 2


@pytest.mark.parametrize("hook", ["on_dirty_starting", "dirty_post_fork",
                                  "dirty_worker_init", "dirty_worker_exit"])
def test_hooks_wsgiloop_does_not_run_are_refused(tmp_path, hook):
    write(tmp_path / "g.py", f"""
        workers = 2

        def {hook}(*args):
            pass
    """)
    message = error(tmp_path, "-c", "g.py")
    assert message.startswith(f"g.py: {hook}: this gunicorn server hook is not supported")
    assert "migrating-from-gunicorn.md" in message


def test_hooks_from_a_python_config_file_are_kept_as_functions(tmp_path):
    write(tmp_path / "g.py", """
        def post_fork(server, worker):
            pass

        when_ready = print
        pre_request = "hooks_module:before"
    """)
    s = load(tmp_path, "-c", "g.py")
    assert callable(s.post_fork) and s.post_fork.__name__ == "post_fork"
    assert s.when_ready is print
    assert s.pre_request == "hooks_module:before"  # imported when the server starts
    assert s.on_exit is None


@pytest.mark.parametrize("value", [42, "42", "no-colon", "a:b:c", "mod:"])
def test_a_hook_that_is_not_a_function_is_refused(tmp_path, value):
    write(tmp_path / "g.py", f"post_fork = {value!r}\n")
    assert "post_fork" in error(tmp_path, "-c", "g.py")


def test_a_hook_set_to_none_asks_for_nothing(tmp_path):
    write(tmp_path / "g.py", "dirty_post_fork = None\npost_fork = None\nworkers = 2\n")
    s = load(tmp_path, "-c", "g.py")
    assert (s.workers, s.post_fork) == (2, None)


def test_harmless_gunicorn_settings_are_ignored_with_a_warning(tmp_path):
    write(tmp_path / "g.py", """
        worker_class = "gthread"
        initgroups = True
        capture_output = True
        enable_backlog_metric = True
        sendfile = False
    """)
    warnings: list[str] = []
    load(tmp_path, "-c", "g.py", warnings=warnings)
    assert len(warnings) == 5
    assert warnings[0].startswith("g.py: worker_class: ignored: wsgiloop has one kind of "
                                  "worker")
    assert any(w.startswith("g.py: initgroups: ignored: ") for w in warnings)


def test_gunicorn_worker_connections_and_tmp_upload_dir_are_read(tmp_path):
    write(tmp_path / "g.py", "worker_connections = 200\ntmp_upload_dir = '/var/tmp'\n")
    warnings: list[str] = []
    s = load(tmp_path, "-c", "g.py", warnings=warnings)
    assert (s.worker_connections, s.spool_dir, warnings) == (200, "/var/tmp", [])


def test_gunicorn_defaults_written_out_ask_for_nothing(tmp_path):
    write(tmp_path / "g.py", """
        worker_class = "sync"
        worker_connections = 1000
        reload = False
        spew = False
        sendfile = None
        proxy_allow_ips = "127.0.0.1,::1"
        protocol = "http"
        header_map = "drop"
        secure_scheme_headers = {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https",
                                 "X-FORWARDED-SSL": "on"}
        logconfig_dict = {}
        paste = None
        certfile = None
        default_proc_name = "gunicorn"
        workers = 2
    """)
    warnings: list[str] = []
    assert load(tmp_path, "-c", "g.py", warnings=warnings).workers == 2
    assert warnings == []


@pytest.mark.parametrize("line,fragment", [
    ("worker_class = 'uvicorn.workers.UvicornWorker'", "serves WSGI applications only"),
    ("paste = 'development.ini'", "PasteDeploy is not supported"),
    ("logger_class = 'my.Logger'", "--log-config"),
    ("permit_obsolete_folding = True", "strict"),
    ("protocol = 'uwsgi'", "HTTP only"),
    ("header_map = 'dangerous'", "drops header fields"),
    ("http_protocols = 'h2,h1'", "HTTP/1.1 only"),
])
def test_settings_whose_absence_matters_are_refused(tmp_path, line, fragment):
    write(tmp_path / "g.py", line + "\n")
    message = error(tmp_path, "-c", "g.py")
    name = line.split(" = ")[0]
    assert message.startswith(f"g.py: {name}: not supported: ")
    assert fragment in message


def test_reload_settings_from_a_gunicorn_file(tmp_path):
    write(tmp_path / "g.py", """
        reload = True
        reload_engine = "poll"
        reload_extra_files = ["templates/a.html", "conf/b.cfg"]
    """)
    warnings: list[str] = []
    s = load(tmp_path, "-c", "g.py", warnings=warnings)
    assert (s.reload, s.reload_engine) == (True, "poll")
    assert s.reload_extra_files == ["templates/a.html", "conf/b.cfg"]
    assert warnings == []


def test_gunicorn_values_are_translated(tmp_path):
    write(tmp_path / "g.py", """
        limit_request_line = 0
        limit_request_field_size = 0
        umask = "0o22"
        proxy_protocol = "v2"
        forwarded_allow_ips = ["10.0.0.1", "10.0.0.2"]
    """)
    s = load(tmp_path, "-c", "g.py")
    assert s.limit_request_line == s.limit_request_field_size == 1 << 30  # "unlimited"
    assert s.umask == 0o22
    assert s.proxy_protocol is True
    assert s.forwarded_allow_ips == "10.0.0.1,10.0.0.2"
    write(tmp_path / "h.py", "proxy_protocol = 'off'\numask = 18\n")
    s = load(tmp_path, "-c", "h.py")
    assert (s.proxy_protocol, s.umask) == (False, 18)


def test_bad_values_in_a_config_file_name_file_and_setting(tmp_path):
    write(tmp_path / "g.py", "workers = 0\n")
    assert error(tmp_path, "-c", "g.py") == "g.py: workers: invalid value 0: must be at least 1"
    write(tmp_path / "h.py", "workers = True\n")
    assert error(tmp_path, "-c", "h.py").startswith("h.py: workers: invalid value True")
    write(tmp_path / "i.py", "keepalive = 'soon'\n")
    assert error(tmp_path, "-c", "i.py").startswith("i.py: keepalive: invalid value 'soon'")
    write(tmp_path / "j.py", "workers = [1, 2]\n")
    assert "expected one value, not a list" in error(tmp_path, "-c", "j.py")
    write(tmp_path / "k.py", "bind = {'a': 1}\n")
    assert "expected a string, a number or a boolean, not dict" in error(tmp_path, "-c",
                                                                         "k.py")


def test_a_losing_bad_value_in_a_config_file_is_not_checked(tmp_path):
    write(tmp_path / "g.py", "workers = 0\n")
    assert load(tmp_path, "-c", "g.py", "-w", "2").workers == 2


def test_broken_config_files(tmp_path):
    assert error(tmp_path, "-c", "missing.py") == "config file 'missing.py' not found"
    write(tmp_path / "syntax.py", "workers = 2\nbind = (\n")
    assert re.fullmatch(r"syntax\.py:2: syntax error: .+", error(tmp_path, "-c", "syntax.py"))
    write(tmp_path / "raises.py", "workers = 1 // 0\n")
    message = error(tmp_path, "-c", "raises.py")
    assert message.startswith("raises.py: error while running it: ZeroDivisionError")
    assert "raises.py:1" in message
    write(tmp_path / "exits.py", "raise SystemExit(3)\n")
    assert "SystemExit" in error(tmp_path, "-c", "exits.py")


def test_a_setting_given_twice_in_one_file(tmp_path):
    write(tmp_path / "g.py", "keepalive = 2\nkeepalive_timeout = 3\n")
    assert "sets keepalive_timeout again" in error(tmp_path, "-c", "g.py")
    write(tmp_path / "t.toml", "max-requests = 1\nmax_requests = 2\n")
    assert "set twice" in error(tmp_path, "-c", "t.toml")


def test_a_config_file_cannot_name_another(tmp_path):
    write(tmp_path / "g.py", "config = 'other.py'\n")
    assert "cannot name another config file" in error(tmp_path, "-c", "g.py")


# --- TOML and pyproject.toml ----------------------------------------------------------


def test_toml_config_file_uses_our_names(tmp_path):
    write(tmp_path / "wsgiloop.toml", """
        workers = 4
        bind = ["127.0.0.1:8000", "unix:/tmp/app.sock"]
        max-requests = 100
        access_log = "-"
        preload = true
        keepalive_timeout = 2.5
        max_body_size = "10m"
    """)
    s = load(tmp_path, "-c", "wsgiloop.toml")
    assert s.workers == 4 and s.source("workers") == "config file"
    assert s.bind == ["127.0.0.1:8000", "unix:/tmp/app.sock"]
    assert (s.max_requests, s.access_log, s.preload) == (100, "-", True)
    assert (s.keepalive_timeout, s.max_body_size) == (2.5, 10 << 20)


def test_toml_errors(tmp_path):
    write(tmp_path / "a.toml", "workrs = 2\n")
    assert error(tmp_path, "-c", "a.toml") == ("a.toml: workrs: unknown setting; did you "
                                               "mean 'workers'?")
    write(tmp_path / "b.toml", "keepalive = 2\n")
    assert error(tmp_path, "-c", "b.toml") == (
        "b.toml: keepalive: unknown setting (this is gunicorn's name; wsgiloop's is "
        "'keepalive_timeout')")
    write(tmp_path / "c.toml", "workers = \n")
    assert error(tmp_path, "-c", "c.toml").startswith("c.toml: invalid TOML: ")
    write(tmp_path / "d.toml", "workers = -1\n")
    assert error(tmp_path, "-c", "d.toml").startswith("d.toml: workers: invalid value -1")


def test_toml_takes_every_setting_spelled_as_its_flag(tmp_path):
    """keep-alive (the flag) as well as keepalive_timeout (the name), with dashes or
    underscores, in a TOML config file and in pyproject.toml."""
    write(tmp_path / "w.toml", """
        app = "site:app"
        keep-alive = 3
        name = "shop"
        reload_extra_file = ["templates/a.html"]
        access-logformat = "%(h)s"
    """)
    s = load(tmp_path, "-c", "w.toml")
    assert (s.keepalive_timeout, s.proc_name, s.reload_extra_files, s.access_log_format) == (
        3.0, "shop", ["templates/a.html"], "%(h)s")
    write(tmp_path / "pyproject.toml", "[tool.wsgiloop]\napp = 'site:app'\nkeep_alive = 4\n")
    assert load(tmp_path).keepalive_timeout == 4.0
    write(tmp_path / "x.toml", "keep-alive = 3\nkeepalive-timeout = 4\n")
    assert "set twice" in error(tmp_path, "-c", "x.toml")


def test_every_long_flag_is_a_toml_spelling(tmp_path):
    for setting in SETTINGS:
        if setting.positional or setting.name == "config":
            continue
        for flag in (f for f in setting.flags + setting.aliases if f.startswith("--")):
            for key in (flag[2:], flag[2:].replace("-", "_")):
                write(tmp_path / "f.toml", f"app = 'site:app'\n{key} = 'x'\n")
                try:
                    load_settings(["-c", "f.toml"], {}, cwd=tmp_path)
                except ConfigError as exc:  # a bad value, but a known name
                    assert "unknown setting" not in str(exc), (flag, key, str(exc))


def test_pyproject_tool_wsgiloop_is_read(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [project]
        name = "mysite"

        [tool.wsgiloop]
        workers = 3
        bind = "127.0.0.1:9000"
        app = "mysite.wsgi:application"
    """)
    settings, app = load_settings([], {}, cwd=tmp_path)
    assert (settings.workers, settings.bind, app) == (3, ["127.0.0.1:9000"],
                                                      "mysite.wsgi:application")
    assert settings.source("workers") == "pyproject.toml"
    assert settings.source("log_level") == "default"


def test_pyproject_without_our_table_or_with_errors(tmp_path):
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    assert load(tmp_path).workers == 1
    write(tmp_path / "pyproject.toml", "[tool.wsgiloop]\nwrkers = 3\n")
    assert error(tmp_path).startswith("pyproject.toml [tool.wsgiloop]: wrkers: unknown")
    write(tmp_path / "pyproject.toml", "[tool.wsgiloop\n")
    assert error(tmp_path).startswith("pyproject.toml: invalid TOML")


def test_pyproject_can_name_the_config_file(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.wsgiloop]\nconfig = 'deploy/prod.py'\n"
                                       "workers = 2\nbacklog = 7\n")
    write(tmp_path / "deploy" / "prod.py", "workers = 8\n")
    s = load(tmp_path)
    assert (s.workers, s.backlog) == (8, 7)
    assert (s.config, s.source("config")) == ("deploy/prod.py", "pyproject.toml")


def test_config_file_named_pyproject_reads_its_tool_table(tmp_path):
    write(tmp_path / "sub" / "pyproject.toml", "[tool.wsgiloop]\nworkers = 5\n")
    assert load(tmp_path, "-c", "sub/pyproject.toml").workers == 5


# --- precedence -----------------------------------------------------------------------


def test_precedence_of_every_source(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [tool.wsgiloop]
        workers = 2
        backlog = 20
        max_requests = 200
        threads = 2
        timeout = 2
    """)
    write(tmp_path / "gunicorn.conf.py", """
        backlog = 30
        max_requests = 300
        threads = 3
        timeout = 3
    """)
    env = {"WSGILOOP_MAX_REQUESTS": "400", "WSGILOOP_THREADS": "4", "WSGILOOP_TIMEOUT": "4",
           CMD_ARGS_VAR: "--threads 5 -t 5"}
    s = load(tmp_path, "--timeout", "6", env=env)
    assert (s.workers, s.source("workers")) == (2, "pyproject.toml")
    assert (s.backlog, s.source("backlog")) == (30, "config file")
    assert (s.max_requests, s.source("max_requests")) == (400, "environment")
    assert (s.threads, s.source("threads")) == (5, "WSGILOOP_CMD_ARGS")
    assert (s.timeout, s.source("timeout")) == (6.0, "command line")
    assert (s.graceful_timeout, s.source("graceful_timeout")) == (30.0, "default")


def test_gunicorn_environment_variables(tmp_path):
    """GUNICORN_CMD_ARGS sits just below WSGILOOP_CMD_ARGS; PORT and WEB_CONCURRENCY
    (set by hosting platforms) are gunicorn's fallbacks for bind and workers, below every
    other source."""
    write(tmp_path / "gunicorn.conf.py", "backlog = 30\ntimeout = 3\n")
    env = {"GUNICORN_CMD_ARGS": "--backlog 40 --timeout 4 --keep-alive 7",
           CMD_ARGS_VAR: "--timeout 5", "PORT": "5001", "WEB_CONCURRENCY": "3"}
    s = load(tmp_path, env=env)
    assert (s.backlog, s.source("backlog")) == (40, "GUNICORN_CMD_ARGS")
    assert (s.timeout, s.source("timeout")) == (5.0, "WSGILOOP_CMD_ARGS")
    assert (s.keepalive_timeout, s.source("keepalive_timeout")) == (7.0, "GUNICORN_CMD_ARGS")
    assert (s.bind, s.source("bind")) == (["0.0.0.0:5001"], "PORT/WEB_CONCURRENCY")
    assert (s.workers, s.source("workers")) == (3, "PORT/WEB_CONCURRENCY")
    # Any other source of bind or workers wins over them.
    s = load(tmp_path, "-b", "127.0.0.1:9", env=env | {"WSGILOOP_WORKERS": "2"})
    assert (s.bind, s.workers) == (["127.0.0.1:9"], 2)
    write(tmp_path / "gunicorn.conf.py", "bind = 'unix:/tmp/x.sock'\nworkers = 5\n")
    s = load(tmp_path, env=env)
    assert (s.bind, s.workers) == (["unix:/tmp/x.sock"], 5)
    (tmp_path / "gunicorn.conf.py").unlink()
    assert error(tmp_path, env={"GUNICORN_CMD_ARGS": "--no-such-flag"}) == (
        "GUNICORN_CMD_ARGS: unrecognized arguments: --no-such-flag")
    assert error(tmp_path, env={"WEB_CONCURRENCY": "many"}).startswith(
        "WEB_CONCURRENCY: invalid value 'many'")
    assert error(tmp_path, env={"PORT": "http"}).startswith("PORT: invalid value")


def test_gunicorn_cmd_args_with_gunicorn_only_flags(tmp_path):
    """What a Docker image for gunicorn typically sets works: wsgiloop's flags apply,
    gunicorn's others are read as in a config file (ignored with a warning, or refused),
    and an application named there is ignored, as gunicorn does."""
    warnings: list[str] = []
    s = load(tmp_path, env={"GUNICORN_CMD_ARGS": "--worker-tmp-dir /dev/shm -k gthread "
                                                 "--workers 3 --no-sendfile --log-syslog "
                                                 "--statsd-host=localhost:8125 other:app"},
             warnings=warnings)
    assert (s.workers, s.source("workers")) == (3, "GUNICORN_CMD_ARGS")
    assert (s.log_syslog, s.source("log_syslog")) == (True, "GUNICORN_CMD_ARGS")
    assert (s.statsd_host, s.source("statsd_host")) == ("localhost:8125",
                                                        "GUNICORN_CMD_ARGS")
    assert [w.split(": ignored")[0] for w in warnings] == [
        "GUNICORN_CMD_ARGS: the application named there is ignored, as gunicorn does",
        "GUNICORN_CMD_ARGS: --worker-tmp-dir", "GUNICORN_CMD_ARGS: -k",
        "GUNICORN_CMD_ARGS: --no-sendfile"]
    assert load_settings(["mine:app"], {"GUNICORN_CMD_ARGS": "other:app"},
                         cwd=tmp_path)[1] == "mine:app"
    assert error(tmp_path, env={"GUNICORN_CMD_ARGS": "--paste deploy.ini"}).startswith(
        "GUNICORN_CMD_ARGS: --paste: not supported:")
    assert error(tmp_path, env={"GUNICORN_CMD_ARGS": "-k uvicorn.workers.UvicornWorker"}
                 ).startswith("GUNICORN_CMD_ARGS: -k: not supported:")


def test_config_file_choice_follows_the_same_precedence(tmp_path):
    for name, workers in (("a.py", 2), ("b.py", 3), ("c.py", 4), ("d.py", 5)):
        write(tmp_path / name, f"workers = {workers}\n")
    write(tmp_path / "pyproject.toml", "[tool.wsgiloop]\nconfig = 'a.py'\n")
    assert load(tmp_path).workers == 2
    env = {"WSGILOOP_CONFIG": "b.py"}
    assert load(tmp_path, env=env).workers == 3
    env[CMD_ARGS_VAR] = "-c c.py"
    assert load(tmp_path, env=env).workers == 4
    s = load(tmp_path, "--config", "d.py", env=env)
    assert (s.workers, s.config, s.source("config")) == (5, "d.py", "command line")


def test_a_repeatable_setting_is_replaced_not_extended(tmp_path):
    write(tmp_path / "gunicorn.conf.py", "bind = ['127.0.0.1:1', '127.0.0.1:2']\n"
                                         "raw_env = ['A=1']\n")
    s = load(tmp_path, "-b", "127.0.0.1:3", env={"WSGILOOP_RAW_ENV": "B=2 'C=x y'"})
    assert s.bind == ["127.0.0.1:3"]
    assert s.raw_env == ["B=2", "C=x y"]


def test_cmd_args_variable(tmp_path):
    s = load(tmp_path, env={CMD_ARGS_VAR: "--access-log - --access-log-format '%(h)s %(r)s'"})
    assert (s.access_log, s.access_log_format) == ("-", "%(h)s %(r)s")
    assert s.source("access_log") == "WSGILOOP_CMD_ARGS"
    assert error(tmp_path, env={CMD_ARGS_VAR: "--no-such-flag"}) == (
        "WSGILOOP_CMD_ARGS: unrecognized arguments: --no-such-flag")
    assert error(tmp_path, env={CMD_ARGS_VAR: "--backlog"}).startswith(
        "WSGILOOP_CMD_ARGS: argument --backlog: expected one argument")
    assert "cannot split it like a shell does" in error(tmp_path, env={CMD_ARGS_VAR: "-w '2"})
    assert error(tmp_path, env={CMD_ARGS_VAR: "--backlog x"}).startswith(
        "WSGILOOP_CMD_ARGS: --backlog: invalid value 'x'")
    # The application may be given there too, below the command line's.
    assert load_settings([], {CMD_ARGS_VAR: "site:app -w 2"}, cwd=tmp_path)[1] == "site:app"
    assert CMD_ARGS_VAR not in unknown_env_vars({CMD_ARGS_VAR: "", DAEMON_MASTER_VAR: "1"})


# --- new flags and gunicorn's spellings -------------------------------------------------


def test_gunicorn_flag_spellings(tmp_path):
    s = load(tmp_path, "--access-logformat", "%(h)s", "-D", "-e", "A=1", "--env", "B==2",
             "--pythonpath", "src, lib", "-p", "x.pid", "-u", "www", "-g", "www", "-m", "027",
             "--log-file", "e.log", "--keep-alive", "3", "-w", "2", "-t", "9")
    assert s.access_log_format == "%(h)s"
    assert s.daemon is True
    assert s.raw_env == ["A=1", "B==2"]
    assert s.pythonpath == ["src", "lib"]
    assert (s.pid, s.user, s.group, s.umask, s.error_log) == ("x.pid", "www", "www", 0o27,
                                                              "e.log")
    assert (s.keepalive_timeout, s.workers, s.timeout) == (3.0, 2, 9.0)
    assert load(tmp_path, "-D", "--no-daemon").daemon is False
    assert "--env: invalid value 'NOEQUALS': expected KEY=VALUE" in error(
        tmp_path, "-e", "NOEQUALS")


def test_print_config_needs_no_application(tmp_path):
    settings, app = load_settings(["--print-config"], {}, cwd=tmp_path)
    assert app == "" and settings.print_config is True
    text = describe_settings(settings, app)
    assert re.search(r"^print_config +=  ?True +# command line$", text, re.M)
    assert re.search(r"^app += none$", text, re.M)
    s = load(tmp_path, "-m", "022")
    assert re.search(r"^umask += 0o22 +# command line$", describe_settings(s, "a:b"), re.M)


# --- gunicorn's settings, all of them ---------------------------------------------------


def test_every_gunicorn_setting_has_an_entry():
    config = pytest.importorskip("gunicorn.config")
    missing = [s.name for s in config.KNOWN_SETTINGS if s.name not in GUNICORN_SETTINGS]
    assert missing == [], "add these to GUNICORN_SETTINGS and the migration guide"


def test_gunicorn_entries_point_at_real_settings():
    planned = {"reload"}  # the lead adds these with their features
    for name, entry in GUNICORN_SETTINGS.items():
        assert entry.action in ("set", "ignore", "refuse", "hook"), name
        if entry.action == "set":
            assert entry.ours in SETTINGS_BY_NAME or entry.ours in planned, name
        else:
            assert entry.reason, name
    assert gunicorn_names_for("keepalive_timeout") == ["keepalive"]


def test_migration_guide_covers_every_gunicorn_setting():
    doc = MIGRATING.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| ([^\n]*)$", doc, re.M))
    assert set(GUNICORN_SETTINGS) <= set(rows), set(GUNICORN_SETTINGS) - set(rows)
    for name, entry in GUNICORN_SETTINGS.items():
        row = rows[name]
        if entry.action == "set" and entry.ours in SETTINGS_BY_NAME:
            assert f"`{entry.ours}`" in row, (name, row)
        elif entry.action == "set":
            assert "planned (issue 5)" in row, (name, row)
        elif entry.action == "hook":
            assert "not supported" in row and "hook" in row, (name, row)
        else:
            assert "not supported" in row or "ignored" in row, (name, row)


def test_settings_doc_names_gunicorn_spellings():
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert "* Config file: `keepalive_timeout`; gunicorn's name: `keepalive`" in doc
    assert "WSGILOOP_CMD_ARGS" in doc and "pyproject.toml" in doc


def test_every_new_setting_is_in_the_table():
    names = {s.name for s in SETTINGS}
    assert {"config", "check_config", "print_config", "daemon", "raw_env",
            "pythonpath"} <= names


# --- the command, as a subprocess -------------------------------------------------------


def run_cli(*args: str, cwd: Path, env: dict | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "wsgiloop", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


PROBE_APP = """
    import json
    import os
    import threading

    import helper_lib

    IMPORTED_IN = os.getpid()


    def app(environ, start_response):
        mask = os.umask(0)
        os.umask(mask)
        body = json.dumps({
            "pid": os.getpid(), "imported_in": IMPORTED_IN, "uid": os.getuid(),
            "gid": os.getgid(), "umask": mask, "thread": threading.current_thread().name,
            "greeting": os.environ.get("GREETING"), "helper": helper_lib.NAME,
            "cwd": os.getcwd(),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
"""


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    write(tmp_path / "site" / "probe_app.py", PROBE_APP)
    write(tmp_path / "site" / "lib" / "helper_lib.py", "NAME = 'from lib'\n")
    return tmp_path


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def raw_exchange(server, data: bytes) -> bytes:
    from support import raw_request

    with server.connect() as sock:
        return raw_request(sock, data)


def test_cli_print_config_shows_sources(probe_dir):
    write(probe_dir / "gunicorn.conf.py", "workers = 3\nkeepalive = 4\nenable_backlog_metric = 1\n")
    result = run_cli("probe_app:app", "--print-config", "-t", "7", cwd=probe_dir,
                     env={"WSGILOOP_BACKLOG": "9"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^workers += 3 +# config file$", out, re.M)
    assert re.search(r"^keepalive_timeout += 4\.0 +# config file$", out, re.M)
    assert re.search(r"^backlog += 9 +# environment$", out, re.M)
    assert re.search(r"^timeout += 7\.0 +# command line$", out, re.M)
    assert re.search(r"^config += 'gunicorn.conf.py' +# default$", out, re.M)
    assert result.stderr.startswith("wsgiloop: warning: gunicorn.conf.py: "
                                    "enable_backlog_metric: ignored")


def test_cli_check_config(probe_dir):
    ok = run_cli("probe_app:app", "--check-config", "--chdir", "site", "--pythonpath", "lib",
                 cwd=probe_dir)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = run_cli("probe_app:app", "--check-config", "--chdir", "site", cwd=probe_dir)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "wsgiloop: error: error importing 'probe_app': ModuleNotFoundError: No module named "
        f"'helper_lib' (at {probe_dir / 'site' / 'probe_app.py'}:5)"]


def test_cli_config_file_errors_are_one_line(probe_dir):
    write(probe_dir / "gunicorn.conf.py", "def dirty_post_fork(arbiter, worker):\n    pass\n")
    result = run_cli("probe_app:app", cwd=probe_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "wsgiloop: error: gunicorn.conf.py: dirty_post_fork: this gunicorn server hook is "
        "not supported: wsgiloop does not run this hook; see docs/migrating-from-gunicorn.md "
        "for what to do instead, and remove it"]
    result = run_cli("probe_app:app", "-c", "nope.toml", cwd=probe_dir)
    assert result.stderr.splitlines() == ["wsgiloop: error: config file 'nope.toml' not found"]


def test_served_with_a_gunicorn_config_file(probe_dir):
    """A real server configured by a gunicorn.conf.py: bind, workers, raw_env, pythonpath,
    chdir, access log format; and the ignored setting's warning in the log."""
    from support import ServerProcess

    write(probe_dir / "gunicorn.conf.py", """
        bind = "127.0.0.1:0"
        workers = 2
        chdir = "site"
        pythonpath = "lib"
        raw_env = ["GREETING=hello world"]
        accesslog = "-"
        access_log_format = "ACCESS %(m)s %(U)s %(s)s"
        loglevel = "debug"
        worker_class = "sync"
        enable_backlog_metric = True
    """)
    with ServerProcess("probe_app:app", bind="", cwd=probe_dir) as server:
        info = get_json(server.url + "/hello")
        assert info["greeting"] == "hello world"
        assert info["helper"] == "from lib"
        assert info["cwd"] == str(probe_dir / "site")
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")
        server.wait_for_log(r"gunicorn.conf.py: enable_backlog_metric: ignored")
        deadline = time.monotonic() + 5
        while "ACCESS GET /hello 200" not in server.stdout and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "ACCESS GET /hello 200" in server.stdout
        assert server.stop() == 0


def test_served_with_pyproject_and_cmd_args(probe_dir):
    from support import ServerProcess

    write(probe_dir / "site" / "pyproject.toml", """
        [tool.wsgiloop]
        app = "probe_app:app"
        pythonpath = ["lib"]
        server-header = "from-pyproject"
    """)
    env = {CMD_ARGS_VAR: "-e GREETING=cmd-args --server-header from-cmd-args"}
    # No APP on the command line: it comes from [tool.wsgiloop]; the bind from the default.
    with ServerProcess("--threads=2", "-b", "127.0.0.1:0", env=env, cwd=probe_dir / "site",
                       bind="") as server:
        with urllib.request.urlopen(server.url + "/", timeout=10) as response:
            info = json.loads(response.read())
            assert response.headers["Server"] == "from-cmd-args"
        assert info["greeting"] == "cmd-args"
        assert info["thread"] != "MainThread"  # --threads 2: a pool thread
        assert server.stop() == 0


def test_served_with_platform_variables_and_gunicorn_cmd_args(probe_dir, free_port):
    """A deployment as a hosting platform runs gunicorn: PORT and WEB_CONCURRENCY set by
    the platform, more flags in GUNICORN_CMD_ARGS, no --bind."""
    from support import ServerProcess

    env = {"PORT": str(free_port), "WEB_CONCURRENCY": "2",
           "GUNICORN_CMD_ARGS": "--access-logfile - --access-logformat 'GCA %(m)s %(U)s'"}
    with ServerProcess("probe_app:app", "--chdir", str(probe_dir / "site"), "--pythonpath",
                       "lib", env=env, bind="") as server:
        assert server.url == f"http://0.0.0.0:{free_port}"
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")
        get_json(f"http://127.0.0.1:{free_port}/hello")
        deadline = time.monotonic() + 5
        while "GCA GET /hello" not in server.stdout and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "GCA GET /hello" in server.stdout
        assert server.stop() == 0


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_flags_on_a_real_server(probe_dir, tmp_path):
    """gunicorn's command line, verbatim, on a real server: every flag has its effect."""
    from support import ServerProcess

    pidfile = tmp_path / "run" / "app.pid"
    pidfile.parent.mkdir()
    args = ["-w", "2", "-t", "20", "--threads", "2", "--graceful-timeout", "5",
            "--max-requests", "3", "--max-requests-jitter", "1", "--preload",
            "--chdir", str(probe_dir / "site"), "--pythonpath", "lib", "-e", "GREETING=flags",
            "--pid", str(pidfile), "--backlog", "17", "--keep-alive", "1",
            "--limit-request-line", "200", "--limit-request-fields", "6",
            "--limit-request-field_size", "100", "--access-logfile", "-",
            "--access-logformat", "FMT %(m)s %(s)s", "--error-logfile", "-",
            "--log-level", "debug", "-m", "027"]
    with ServerProcess("probe_app:app", *args, cwd=ROOT) as server:
        master = server.proc.pid
        assert pidfile.read_text().strip() == str(master)  # --pid
        server.wait_for_log(r"worker 2 \(pid \d+\) serving")  # -w 2
        info = get_json(server.url + "/")
        assert info["imported_in"] == master  # --preload: imported by the master
        assert info["pid"] != master
        assert info["thread"] != "MainThread"  # --threads
        assert info["greeting"] == "flags"  # -e
        assert info["helper"] == "from lib"  # --pythonpath
        assert info["cwd"] == str(probe_dir / "site")  # --chdir
        assert info["umask"] == 0o027  # -m
        # --limit-request-line, --limit-request-fields, --limit-request-field_size
        long_line = b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert raw_exchange(server, long_line).startswith(b"HTTP/1.1 414")
        many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-%d: 1\r\n" % i for i in range(8)) + b"\r\n"
        assert raw_exchange(server, many).startswith(b"HTTP/1.1 431")
        wide = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200 + b"\r\n\r\n"
        assert raw_exchange(server, wide).startswith(b"HTTP/1.1 431")
        # --keep-alive 1: an idle connection is closed after about a second.
        with server.connect(timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            started = time.monotonic()
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
            assert 0.5 < time.monotonic() - started < 5
        # --backlog 17, as the kernel reports it for the listening socket.
        ss = shutil.which("ss")
        if ss:
            out = subprocess.run([ss, "-ltnH", f"sport = :{server.port}"],
                                 capture_output=True, text=True).stdout
            assert re.search(r"LISTEN\s+\d+\s+17\s", out), out
        # --max-requests 3 (+ jitter 1): a worker asks to be replaced after 3 or 4.
        for _ in range(12):
            get_json(server.url + "/")
        server.wait_for_log(r"asks to be replaced")
        assert "FMT GET 200" in server.stdout  # --access-logformat
        # -t and --graceful-timeout reach their settings (their effects are tested with
        # the workers).
        printed = run_cli("probe_app:app", *args, "--print-config", cwd=ROOT).stdout
        assert re.search(r"^timeout += 20\.0 +# command line$", printed, re.M)
        assert re.search(r"^graceful_timeout += 5\.0 +# command line$", printed, re.M)
        assert server.stop() == 0
    assert not pidfile.exists()


def _readable_by_others(path: str) -> bool:
    """Whether every directory above ``path`` lets other users through (o+x)."""
    parts = Path(os.path.realpath(path)).parents
    return all(os.stat(p).st_mode & 0o001 for p in parts)


def test_user_and_group_flags(probe_dir):
    """-u/-g: to 'nobody' when root and this Python is readable by it, else (still going
    through the lookups and the switch) to the current user."""
    import grp

    from support import ServerProcess

    root = os.geteuid() == 0
    if root and all(_readable_by_others(p) for p in (sys.executable, os.__file__,
                                                     str(ROOT))):
        target = pwd.getpwnam("nobody")
    else:
        target = pwd.getpwuid(os.geteuid())
    args = ["-u", target.pw_name]
    if root:
        args += ["-g", grp.getgrgid(target.pw_gid).gr_name]
    with ServerProcess("probe_app:app", *args, "--preload", "--chdir",
                       str(probe_dir / "site"), "--pythonpath", "lib", cwd=ROOT) as server:
        info = get_json(server.url + "/")
        assert (info["uid"], info["gid"]) == (target.pw_uid, target.pw_gid)
        assert server.stop() == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_daemon_detaches_and_serves(probe_dir, tmp_path, free_port):
    pidfile = tmp_path / "d.pid"
    errlog = tmp_path / "error.log"
    started = time.monotonic()
    result = run_cli("probe_app:app", "-D", "--pid", str(pidfile), "--error-log",
                     str(errlog), "--bind", f"127.0.0.1:{free_port}", "--chdir", "site",
                     "--pythonpath", "lib", cwd=probe_dir)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    pid = int(pidfile.read_text())
    try:
        assert f"Listening at: http://127.0.0.1:{free_port} ({pid})" in result.stderr
        assert f"master pid {pid}" in result.stderr
        info = get_json(f"http://127.0.0.1:{free_port}/")
        assert info["helper"] == "from lib"
        # Detached: a new session, not the command's child, stdin on /dev/null.
        assert os.getsid(pid) != os.getsid(0)
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/2") == str(errlog)
        assert "Listening at:" in errlog.read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert not pidfile.exists()
    assert f"master {pid} stopped" in errlog.read_text()


def test_daemon_that_cannot_start_reports_the_error(probe_dir, tmp_path):
    errlog = tmp_path / "error.log"
    result = run_cli("probe_app:nothing", "-D", "--error-log", str(errlog), "--bind",
                     "127.0.0.1:0", "--chdir", "site", "--pythonpath", "lib",
                     cwd=probe_dir)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "wsgiloop: error: module 'probe_app' has no attribute 'nothing'")
    assert "Traceback" not in result.stderr


def test_daemon_setting_from_a_config_file_and_no_daemon(probe_dir):
    """--no-daemon overrides daemon = True in a config file (so the server stays ours)."""
    from support import ServerProcess

    write(probe_dir / "gunicorn.conf.py", "daemon = True\nchdir = 'site'\n"
                                          "pythonpath = 'lib'\n")
    with ServerProcess("probe_app:app", "--no-daemon", cwd=probe_dir) as server:
        assert get_json(server.url + "/")["helper"] == "from lib"
        assert server.stop() == 0
