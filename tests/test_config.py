"""The settings table, its parser, environment and docs; and the ``wsgiloop`` command."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from wsgiloop import __version__
from wsgiloop.config import (
    ENV_PREFIX,
    SECTIONS,
    SETTINGS,
    ConfigError,
    Settings,
    build_parser,
    load_settings,
    render_settings_doc,
    unknown_env_vars,
)

ROOT = Path(__file__).resolve().parent.parent
#: A directory without pyproject.toml or gunicorn.conf.py, so that only argv and env count.
PLAIN_DIR = Path(__file__).resolve().parent
BY_NAME = {s.name: s for s in SETTINGS}


def settings(*argv: str, **env: str) -> Settings:
    return load_settings(["app:app", *argv], env, cwd=PLAIN_DIR)[0]


def config_error(*argv: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(["app:app", *argv], env, cwd=PLAIN_DIR)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the table ------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    s = Settings()
    assert s.bind == ["127.0.0.1:8000"]
    assert s.backlog == 2048
    assert s.log_level == "info"
    assert s.access_log is None
    assert s.access_log_format == '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    assert s.error_log == "-"
    assert s.chdir is None
    assert s.root_path == ""
    assert s.server_header == "wsgiloop"
    assert s.limit_request_line == 8190
    assert s.limit_request_fields == 100
    assert s.limit_request_field_size == 8190
    assert s.limit_request_head == 65536
    assert s.max_body_size == 1073741824
    assert s.header_timeout == 10.0
    assert s.keepalive_timeout == 5.0
    assert s.body_timeout == 30.0
    assert s.spool_threshold == 262144
    assert s.slow_callback_threshold == 1.0


def test_table_is_consistent():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    flags = [f for s in SETTINGS for f in s.flags + s.aliases]
    assert len(flags) == len(set(flags))
    for s in SETTINGS:
        assert s.section in SECTIONS
        assert s.env_var == ENV_PREFIX + s.name.upper()
        assert s.help.strip()
        if not s.positional:
            assert s.metavar or s.kind == "flag"
            assert all(f.startswith("-") for f in s.flags + s.aliases)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.default is not None],
                         ids=lambda s: s.name)
def test_every_default_passes_its_own_validator(setting):
    if setting.append:
        assert [setting.validate(str(v)) for v in setting.default] == setting.default
    else:
        assert setting.validate(str(setting.default)) == setting.default


def test_every_flag_and_alias_reaches_its_setting():
    samples = {"app": None, "bind": "127.0.0.1:9", "backlog": "7", "log_level": "debug",
               "access_log": "-", "access_log_format": "%(h)s", "error_log": "err.log",
               "chdir": "/tmp", "root_path": "/x", "server_header": "x", "user": "root",
               "group": "root", "pid": "/tmp/x.pid", "interface": "wsgi", "config": "",
               "raw_env": "A=1", "pythonpath": "a,b",
               "forwarded_allow_ips": "10.0.0.0/8,unix", "proxy_allow_ips": "10.1.2.3",
               "reload_engine": "poll", "reload_extra_files": "templates/a.html",
               "ciphers": "ECDHE+AESGCM", "cert_reqs": "2",
               "static": "/static=./x", "parser": "python"}
    samples.update(log_format="json", log_config_dict='{"version": 1}',
                   log_syslog_to="udp://127.0.0.1:5514", log_syslog_facility="local1")
    # TLS settings are refused without a certificate (and cert_reqs without a CA).
    tls = ("--certfile", "c.pem", "--ca-certs", "ca.pem")
    companions = {"keyfile": tls[:2], "ca_certs": tls[:2], "ciphers": tls[:2],
                  "cert_reqs": tls}
    for s in SETTINGS:
        if s.positional:
            continue
        text = samples.get(s.name, "hooks_module:function" if s.kind == "hook" else "3")
        for flag, value in s.shortcuts:
            assert getattr(settings(flag), s.name) == s.validate(value), flag
        for flag in s.flags + s.aliases:
            if s.kind == "flag":
                assert getattr(settings(flag), s.name) is True, flag
                continue
            value = getattr(settings(*companions.get(s.name, ()), flag, text), s.name)
            expected = s.validate(text)
            assert value == ([expected] if s.append else expected), flag


def test_gunicorn_spellings_are_accepted():
    s = settings("--access-logfile", "-", "--error-logfile", "e.log",
                 "--limit-request-field_size", "100", "--keepalive-timeout", "2")
    assert (s.access_log, s.error_log, s.limit_request_field_size, s.keepalive_timeout) == (
        "-", "e.log", 100, 2.0)


def test_abbreviated_flags_are_refused():
    with pytest.raises(SystemExit) as info:
        load_settings(["app:app", "--back", "5"], {})
    assert info.value.code == 2


# --- precedence -----------------------------------------------------------------------


def test_environment_overrides_default_and_command_line_overrides_environment():
    s = settings(WSGILOOP_BACKLOG="10")
    assert s.backlog == 10 and s.source("backlog") == "environment"
    s = settings("--backlog", "20", WSGILOOP_BACKLOG="10")
    assert s.backlog == 20 and s.source("backlog") == "command line"
    assert s.source("log_level") == "default"


def test_command_line_bind_replaces_environment_bind():
    env = {"WSGILOOP_BIND": "127.0.0.1:1 [::1]:2"}
    assert settings(**env).bind == ["127.0.0.1:1", "[::1]:2"]
    assert settings("-b", ":3", "--bind", "4", **env).bind == [":3", "4"]
    assert settings(WSGILOOP_BIND="127.0.0.1:1,unix:/tmp/s").bind == ["127.0.0.1:1",
                                                                      "unix:/tmp/s"]


def test_losing_values_are_not_validated():
    # A bad environment value that the command line overrides does not matter.
    assert settings("--backlog", "5", WSGILOOP_BACKLOG="junk").backlog == 5


def test_app_from_command_line_or_environment():
    assert load_settings(["a:b"], {"WSGILOOP_APP": "c:d"}, cwd=PLAIN_DIR)[1] == "a:b"
    assert load_settings([], {"WSGILOOP_APP": "c:d"}, cwd=PLAIN_DIR)[1] == "c:d"
    with pytest.raises(ConfigError, match="no application given"):
        load_settings([], {}, cwd=PLAIN_DIR)


def test_empty_environment_values():
    assert settings(WSGILOOP_SERVER_HEADER="").server_header == ""
    assert settings(WSGILOOP_ACCESS_LOG="").access_log is None
    assert "WSGILOOP_BIND: no value given" in config_error(WSGILOOP_BIND=" ")


def test_unknown_environment_variables_are_reported():
    env = {"WSGILOOP_BACKLOG": "1", "WSGILOOP_BAKLOG": "1", "PATH": "/bin"}
    assert unknown_env_vars(env) == ["WSGILOOP_BAKLOG"]


# --- validators -----------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [("0", 0), ("65536", 65536), ("64k", 65536),
                                        ("64K", 65536), ("1m", 1 << 20), ("2g", 2 << 30),
                                        (" 10 ", 10)])
def test_sizes(text, value):
    assert settings("--max-body-size", text).max_body_size == value


@pytest.mark.parametrize("text", ["-1", "1.5", "k", "10x", "1kb", "", "0x10", "1e3"])
def test_bad_sizes(text):
    message = config_error("--max-body-size", text)
    assert message.startswith(f"--max-body-size: invalid value {text!r}")


def test_integers_reject_suffixes_negatives_and_zero_where_pointless():
    assert settings("--backlog", "1").backlog == 1
    assert settings("--limit-request-fields", "5").limit_request_fields == 5
    assert "expected an integer >= 1" in config_error("--backlog", "-5")
    assert "expected an integer >= 1" in config_error("--backlog", "5k")
    assert "must be at least 1" in config_error("--backlog", "0")
    assert "must be at least 1" in config_error("--limit-request-line", "0")


@pytest.mark.parametrize("flag", ["--header-timeout", "--keep-alive", "--body-timeout",
                                  "--graceful-timeout", "--slow-callback-threshold"])
def test_seconds(flag):
    name = BY_NAME[next(s.name for s in SETTINGS if flag in s.flags)].name
    assert getattr(settings(flag, "2.5"), name) == 2.5
    assert getattr(settings(flag, "3"), name) == 3.0
    for bad in ("-1", "abc", "inf", "nan", ""):
        assert "invalid value" in config_error(flag, bad)


def test_zero_seconds():
    assert settings("--slow-callback-threshold", "0").slow_callback_threshold == 0.0
    assert settings("--graceful-timeout", "0").graceful_timeout == 0.0
    for flag in ("--header-timeout", "--keep-alive", "--body-timeout"):
        assert "must be greater than 0" in config_error(flag, "0")


def test_log_level():
    assert settings("--log-level", "WARNING").log_level == "warning"
    message = config_error("--log-level", "loud")
    assert message == ("--log-level: invalid value 'loud': expected one of debug, info, "
                       "warning, error, critical")


@pytest.mark.parametrize("good", ["", "/app", "/a/b"])
def test_root_path_good(good):
    assert settings("--root-path", good).root_path == good


@pytest.mark.parametrize("bad", ["/", "app", "/app/", "/a\nb"])
def test_root_path_bad(bad):
    assert "--root-path: invalid value" in config_error("--root-path", bad)


def test_server_header():
    assert settings("--server-header", "").server_header == ""
    assert settings("--server-header", "x/1.0").server_header == "x/1.0"
    assert "control characters" in config_error("--server-header", "x\r\nSet-Cookie: a")
    assert "ASCII" in config_error("--server-header", "caf\u00e9")


def test_access_log_format():
    fmt = '%(h)s "%({x-forwarded-for}i)s" %(D)s %%'
    assert settings("--access-log-format", fmt).access_log_format == fmt
    assert "not a valid %-format" in config_error("--access-log-format", "%(h)s %")
    assert "not a valid %-format" in config_error("--access-log-format", "%s")
    assert "not a valid %-format" in config_error("--access-log-format", "%(h)q")


def test_log_targets_and_paths():
    assert settings("--access-log", "").access_log is None
    assert settings("--access-log", "a.log").access_log == "a.log"
    assert "expected '-' or a file path" in config_error("--error-log", "")
    assert settings("--chdir", "").chdir is None


@pytest.mark.parametrize("bad", ["127.0.0.1:", "127.0.0.1:x", "::1:80", "[::1]:", "host:70000",
                                 "unix:", "a b:80", "fd://x"])
def test_bad_bind_is_a_config_error(bad):
    message = config_error("--bind", bad)
    assert message.startswith(f"--bind: invalid value {bad!r}: bad bind address")


def test_bad_environment_value_names_the_variable():
    assert config_error(WSGILOOP_BACKLOG="lots").startswith(
        "WSGILOOP_BACKLOG: invalid value 'lots'")


# --- the Settings object --------------------------------------------------------------


def test_settings_object():
    s = Settings(backlog=5)
    assert s.backlog == 5 and s.source("backlog") == "override"
    with pytest.raises(AttributeError):
        s.backlog = 6
    with pytest.raises(AttributeError):
        s.nonexistent  # noqa: B018
    assert getattr(s, "nonexistent", "fallback") == "fallback"
    with pytest.raises(TypeError):
        Settings(bogus=1)
    t = s.replace(log_level="debug")
    assert (t.backlog, t.log_level, s.log_level) == (5, "debug", "info")
    with pytest.raises(TypeError):
        s.replace(bogus=1)
    assert Settings() == Settings() and Settings() != s
    assert set(s) == {x.name for x in SETTINGS if not x.positional}
    assert "backlog=5" in repr(s)
    # Repeatable defaults are copies, not the table's list.
    Settings().bind.append("x")
    assert Settings().bind == ["127.0.0.1:8000"]


# --- help and docs --------------------------------------------------------------------


def test_help_is_grouped_and_shows_defaults():
    text = build_parser().format_help()
    for section in SECTIONS:
        assert f"\n{section}:\n" in text
    assert "(default: 2048)" in text
    assert "--access-log-format FORMAT" in text
    assert '%(h)s' in text
    # Aliases are accepted but not listed.
    assert "--access-logfile" not in text


def test_settings_doc_is_up_to_date():
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert doc == render_settings_doc(), (
        "docs/settings.md is stale: run `python -m wsgiloop.config > docs/settings.md`")


def test_settings_doc_mentions_every_setting():
    doc = render_settings_doc()
    for s in SETTINGS:
        assert f"### `{s.name}`" in doc
        assert s.env_var in doc
        for flag in s.flags + s.aliases:
            assert flag in doc


def test_module_main_prints_the_doc():
    out = subprocess.run([sys.executable, "-m", "wsgiloop.config"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == render_settings_doc()


# --- the command line, as a subprocess ------------------------------------------------


def run_cli(*args: str, env: dict | None = None, cwd: Path = ROOT,
            timeout: float = 20) -> subprocess.CompletedProcess:
    full_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "wsgiloop", *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wsgiloop: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "hello_cli_app.py").write_text(textwrap.dedent("""
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"hello from cli"]
        broken = 42
    """))
    (tmp_path / "needs_dep_cli.py").write_text("import no_such_dependency_xyz\n")
    return tmp_path


def test_cli_help_and_version():
    result = run_cli("--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "usage: wsgiloop" in result.stdout and "Binding:" in result.stdout
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"wsgiloop {__version__}"


def test_cli_usage_error_is_argparse_style():
    result = run_cli("x:app", "--no-such-flag")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("wsgiloop: error: unrecognized arguments: "
                                              "--no-such-flag")
    result = run_cli("x:app", "--backlog")
    assert result.returncode == 2 and "expected one argument" in result.stderr


def test_cli_missing_app():
    assert_one_error_line(run_cli(), "no application given")


def test_cli_unimportable_module():
    assert_one_error_line(run_cli("no_such_module_xyz:app"),
                          "module 'no_such_module_xyz' not found")


def test_cli_import_error_inside_module(app_dir):
    assert_one_error_line(run_cli("needs_dep_cli:app", "--chdir", str(app_dir)),
                          "error importing 'needs_dep_cli'", "ModuleNotFoundError",
                          "no_such_dependency_xyz", "needs_dep_cli.py:1")


def test_cli_missing_attribute(app_dir):
    assert_one_error_line(run_cli("hello_cli_app:nope", "--chdir", str(app_dir)),
                          "module 'hello_cli_app' has no attribute 'nope'")


def test_cli_not_callable(app_dir):
    assert_one_error_line(run_cli("hello_cli_app:broken", "--chdir", str(app_dir)),
                          "not callable")


def test_cli_bad_chdir(tmp_path):
    assert_one_error_line(run_cli("x:app", "--chdir", str(tmp_path / "missing")),
                          "cannot change directory to", "no such file or directory")


def test_cli_bad_bind(app_dir):
    assert_one_error_line(run_cli("hello_cli_app:app", "--chdir", str(app_dir),
                                  "--bind", "localhost:"),
                          "--bind: invalid value 'localhost:'", "missing port")


def test_cli_port_in_use(app_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_error_line(run_cli("hello_cli_app:app", "--chdir", str(app_dir),
                                      "--bind", f"127.0.0.1:{port}"),
                              f"cannot bind 127.0.0.1:{port}: address already in use")


@pytest.mark.parametrize("args,fragment", [
    (["--backlog", "abc"], "--backlog: invalid value 'abc'"),
    (["--log-level", "loud"], "--log-level: invalid value 'loud'"),
    (["--max-body-size", "-1"], "--max-body-size: invalid value '-1'"),
    (["--root-path", "/x/"], "--root-path: invalid value '/x/'"),
])
def test_cli_bad_flag_value(args, fragment):
    assert_one_error_line(run_cli("x:app", *args), fragment)


def test_cli_bad_environment_value():
    assert_one_error_line(run_cli("x:app", env={"WSGILOOP_KEEPALIVE_TIMEOUT": "-3"}),
                          "WSGILOOP_KEEPALIVE_TIMEOUT: invalid value '-3'")


def test_cli_unopenable_error_log(app_dir):
    assert_one_error_line(run_cli("hello_cli_app:app", "--chdir", str(app_dir),
                                  "--error-log", str(app_dir / "no" / "such" / "dir.log")),
                          "cannot open error log")


def test_cli_serves_until_terminated(app_dir):
    """The happy path: settings -> app -> sockets -> serving.serve, then SIGTERM."""
    from support import ServerProcess

    with ServerProcess("hello_cli_app:app", "--chdir", str(app_dir), "--access-log", "-",
                       env={"WSGILOOP_SERVER_HEADER": "cli-test"}) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "/hi", timeout=10) as response:
            assert response.read() == b"hello from cli"
            assert response.headers["Server"] == "cli-test"
        assert server.stop() == 0
    assert "Traceback" not in server.log
    assert "GET /hi HTTP/1.1" in server.stdout


def test_every_hook_setting_is_a_hook_the_server_calls():
    from wsgiloop.workers.hooks import HOOK_NAMES

    assert {s.name for s in SETTINGS if s.kind == "hook"} == set(HOOK_NAMES)


def test_pid_file_in_a_missing_directory_is_one_error_line(app_dir: Path) -> None:
    result = run_cli("hello_cli_app:app", "--bind", "127.0.0.1:0", "--pid",
                     "no/such/dir/app.pid", cwd=app_dir)
    assert_one_error_line(result, "--pid no/such/dir/app.pid: no such directory: "
                          f"{app_dir}/no/such/dir")


def test_static_directory_must_exist(app_dir: Path) -> None:
    result = run_cli("hello_cli_app:app", "--bind", "127.0.0.1:0", "--static",
                     "/assets=./missing", cwd=app_dir)
    assert_one_error_line(result, "--static /assets=./missing: no such directory: ./missing")


def test_static_prefix_must_start_with_a_slash(app_dir: Path) -> None:
    (app_dir / "assets").mkdir()
    result = run_cli("hello_cli_app:app", "--static", "assets=./assets", cwd=app_dir)
    assert_one_error_line(result, "--static: invalid value 'assets=./assets'")
