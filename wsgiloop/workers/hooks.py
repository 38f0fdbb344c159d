"""gunicorn's server hooks: functions a config file names, called at points of the
master's and the workers' lives with gunicorn's arguments.

``server`` is the :class:`~wsgiloop.workers.arbiter.Arbiter` and ``worker`` a
:class:`~wsgiloop.workers.worker.Worker`; both offer what hooks usually touch in
gunicorn: ``.pid``, ``.cfg`` (the settings) and ``.log`` (``info``, ``warning``,
``error``, ``exception``...); a worker also ``.age`` and ``.ppid``.  ``pre_request`` and
``post_request`` get a request with ``method``, ``uri``, ``path``, ``query``,
``version``, ``headers`` and ``remote_addr``, and ``post_request`` a response with
``status``, ``status_code``, ``headers`` and ``sent`` (body bytes).

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


class HookRequest:
    """What ``pre_request``/``post_request`` see of a request (from its environ)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.method: str = environ.get("REQUEST_METHOD", "")
        self.path: str = environ.get("PATH_INFO", "")
        self.query: str = environ.get("QUERY_STRING", "")
        self.uri: str = environ.get("RAW_URI") or (
            self.path + ("?" + self.query if self.query else ""))
        self.version: tuple[int, int] = (1, 0) \
            if environ.get("SERVER_PROTOCOL") == "HTTP/1.0" else (1, 1)
        self.remote_addr: str = environ.get("REMOTE_ADDR", "")
        self.headers: list[tuple[str, str]] = [
            (key[5:].replace("_", "-"), value) for key, value in environ.items()
            if key.startswith("HTTP_")]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                self.headers.append((key.replace("_", "-"), environ[key]))


class HookResponse:
    """What ``post_request`` sees of the response, once it has been sent."""

    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int) -> None:
        self.status = status
        self.status_code = int(status.split(" ", 1)[0])
        self.headers = headers
        self.sent = sent


#: Where :class:`PreRequest` leaves the request object, so that ``post_request`` gets the
#: one ``pre_request`` got.
HOOK_REQUEST_KEY = "wsgiloop.hook_request"


class PreRequest:
    """WSGI middleware running the ``pre_request`` hook before the application; the
    application's result goes back untouched (``post_request`` runs once the response
    has been sent, from the connection: see :func:`post_request_caller`)."""

    def __init__(self, app: Callable[..., Any], hooks: Hooks, worker: Any) -> None:
        self.app = app
        self.hooks = hooks
        self.worker = worker

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = environ[HOOK_REQUEST_KEY] = HookRequest(environ)
        self.hooks.call("pre_request", self.worker, request)
        return self.app(environ, start_response)


def post_request_caller(hooks: Hooks, worker: Any
                        ) -> Callable[[Any, int, int], None]:
    """A per-response callback (``(request, code, body_bytes)``, as the connection calls
    its access log) that runs ``post_request`` for WSGI requests."""
    def on_response(request: Any, code: int, length: int) -> None:
        environ = request.environ
        if environ is None:
            return  # not a WSGI request (a native handler, or a request refused early)
        hook_request = environ.get(HOOK_REQUEST_KEY) or HookRequest(environ)
        response = HookResponse(request.response_status or str(code),
                                request.response_headers or [], length)
        hooks.call("post_request", worker, hook_request, environ, response)
    return on_response
