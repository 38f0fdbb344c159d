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

The package's modules, each with one job: :mod:`.base` (shared names), :mod:`.validators`,
:mod:`.table` (the settings and :class:`Settings`), :mod:`.gunicorn` (gunicorn's names),
:mod:`.sources` (command line, environment, files, precedence) and :mod:`.docs`.

``python -m wsgiloop.config > docs/settings.md`` regenerates the settings reference.
"""

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
    SOURCE_OVERRIDE,
    SOURCE_PLATFORM,
    SOURCE_PYPROJECT,
    ConfigError,
)
from .docs import render_settings_doc
from .gunicorn import GUNICORN_SETTINGS, GunicornSetting, gunicorn_names_for
from .sources import build_parser, describe_settings, load_settings, unknown_env_vars
from .table import SETTINGS, SETTINGS_BY_NAME, Setting, Settings
from .validators import LOG_LEVELS

__all__ = [
    "CMD_ARGS_VAR",
    "DAEMON_MASTER_VAR",
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "GUNICORN_CMD_ARGS_VAR",
    "SECTIONS",
    "SOURCE_CMD_ARGS",
    "SOURCE_COMMAND_LINE",
    "SOURCE_CONFIG_FILE",
    "SOURCE_DEFAULT",
    "SOURCE_ENVIRONMENT",
    "SOURCE_GUNICORN_CMD_ARGS",
    "SOURCE_OVERRIDE",
    "SOURCE_PLATFORM",
    "SOURCE_PYPROJECT",
    "ConfigError",
    "GUNICORN_SETTINGS",
    "GunicornSetting",
    "LOG_LEVELS",
    "SETTINGS",
    "SETTINGS_BY_NAME",
    "Setting",
    "Settings",
    "build_parser",
    "describe_settings",
    "gunicorn_names_for",
    "load_settings",
    "render_settings_doc",
    "unknown_env_vars",
]
