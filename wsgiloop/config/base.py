"""Names every part of the settings package shares: the environment prefix, the sources
of a value, the sections, and :class:`ConfigError`."""

from __future__ import annotations

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
            "Timeouts", "Server", "Metrics", "Server hooks")


class ConfigError(Exception):
    """A setting has a bad value; ``str(error)`` is one line fit to show the user."""
