"""gunicorn's server hooks: functions a config file names, called at points of the
master's and the workers' lives with gunicorn's arguments.

``server`` is the :class:`~wsgiloop.workers.arbiter.Arbiter` and ``worker`` a
:class:`~wsgiloop.workers.worker.Worker`; both offer what hooks usually touch in
gunicorn: ``.pid``, ``.cfg`` (the settings) and ``.log`` (``info``, ``warning``,
``error``, ``exception``...); a worker also ``.age`` and ``.ppid``.  What
``pre_request`` and ``post_request`` are given of a WSGI request and its response is
made in :mod:`wsgiloop.request_hooks` (this layer knows no HTTP).

A hook that raises is logged with its traceback; the server goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("wsgiloop.error")

#: The hooks wsgiloop calls, in gunicorn's names.
HOOK_NAMES = ("on_starting", "when_ready", "on_reload", "pre_fork", "post_fork",
              "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
              "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit",
              "ssl_context")


class WorkerAborted(BaseException):
    """Raised in a worker by SIGABRT after its ``worker_abort`` hook ran: unwinds whatever
    the worker was stuck in (a BaseException, so that ``except Exception`` in the
    application or the loader does not stop it)."""


class HookLog:
    """The ``.log`` of a server or worker: gunicorn's logger methods on the error log."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.critical = logger.critical
        self.error = logger.error
        self.warning = logger.warning
        self.info = logger.info
        self.debug = logger.debug
        self.exception = logger.exception
        self.log = logger.log


class Hooks:
    """The hook functions in use, by name (missing ones are not called)."""

    def __init__(self, functions: dict[str, Callable[..., Any]] | None = None) -> None:
        self.functions = {name: f for name, f in (functions or {}).items() if f is not None}

    def __contains__(self, name: str) -> bool:
        return name in self.functions

    def call(self, name: str, *args: Any) -> Any:
        """Call hook ``name`` if there is one; its exception is logged, not raised."""
        function = self.functions.get(name)
        if function is None:
            return None
        try:
            return function(*args)
        except Exception:
            log.exception("error in the %s hook", name)
            return None
