"""Where values come from and which wins: the command line (argparse), the environment,
config files (Python, TOML, pyproject.toml), and :func:`load_settings`, which applies the
precedence."""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import re
import shlex
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from . import validators as v
from .base import (
    CMD_ARGS_VAR,
    DAEMON_MASTER_VAR,
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    GUNICORN_CMD_ARGS_VAR,
    SECTIONS,
    SOURCE_CMD_ARGS,
    SOURCE_COMMAND_LINE,
    SOURCE_CONFIG_FILE,
    SOURCE_DEFAULT,
    SOURCE_ENVIRONMENT,
    SOURCE_GUNICORN_CMD_ARGS,
    SOURCE_PLATFORM,
    SOURCE_PYPROJECT,
    ConfigError,
)
from .gunicorn import GUNICORN_SETTINGS, translate_gunicorn
from .table import SETTINGS, SETTINGS_BY_NAME, Setting, Settings

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
                    if not v.boolean(value) else f"Same as {s.flags[-1]}."
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
    if s.kind == "dict" and isinstance(value, dict):
        return value or None  # a logging dictConfig, as the config file wrote it
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


def _flag_spellings() -> dict[str, str]:
    """Each long command-line flag, without its dashes and with ``_`` for ``-``, to its
    setting's name where the two differ: ``keep_alive`` (from ``--keep-alive``) to
    ``keepalive_timeout``."""
    spellings = {}
    for s in SETTINGS:
        for flag in s.flags + s.aliases:
            spelled = flag[2:].replace("-", "_")
            if flag.startswith("--") and spelled != s.name and spelled not in SETTINGS_BY_NAME:
                spellings[spelled] = s.name
    return spellings


_FLAG_SPELLINGS = _flag_spellings()


def _toml_layer(table: Any, prefix: str) -> _Layer:
    """wsgiloop's own names from a TOML table: a setting's name or its long flag, with
    dashes or underscores (``max-requests``, ``max_requests``, ``keep-alive``,
    ``keepalive_timeout``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix}: expected a table of settings")
    layer: _Layer = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        name = _FLAG_SPELLINGS.get(name, name)
        where = f"{prefix}: {key}"
        if name not in SETTINGS_BY_NAME:
            raise _unknown(name, where, ours_only=True)
        if name in layer:
            raise ConfigError(f"{where}: set twice (also as {layer[name].where})")
        layer[name] = _Raw(value, where, python=True)
    return layer


def _python_layer(path: str, shown: str, warn: Callable[[str], None]) -> _Layer:
    """Run a gunicorn-style Python config file and read its module-level names."""
    from ..loader import describe_exception

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
            translated = translate_gunicorn(name, value, where, warn)
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
    "--paste-global": "raw_paste_global_conf", "--dirty-app": "dirty_apps",
    "--no-control-socket": "control_socket_disable"}
#: Those of them that take no value, and the value they stand for.
_GUNICORN_SWITCHES = {"-R": True, "--no-sendfile": False, "--no-control-socket": True}


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
        translated = translate_gunicorn(name, given, f"{variable}: {flag}", warn)
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
