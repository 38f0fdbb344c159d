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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger("wsgiloop.error")

#: The hooks wsgiloop calls, in gunicorn's names.
HOOK_NAMES = ("on_starting", "when_ready", "on_reload", "pre_fork", "post_fork",
              "post_worker_init", "worker_int", "pre_exec", "pre_request", "post_request",
              "child_exit", "worker_exit", "nworkers_changed", "on_exit", "ssl_context")


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
    """What ``post_request`` sees of the response."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.status_code: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = 0


class RequestHooks:
    """WSGI middleware running ``pre_request`` before the application and
    ``post_request`` once the response is over (after the iterable's ``close``)."""

    def __init__(self, app: Callable[..., Any], hooks: Hooks, worker: Any) -> None:
        self.app = app
        self.hooks = hooks
        self.worker = worker

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = HookRequest(environ)
        self.hooks.call("pre_request", self.worker, request)
        response = HookResponse()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            response.status = status
            response.status_code = int(status.split(" ", 1)[0])
            response.headers = headers
            return start_response(status, headers, exc_info)

        def done() -> None:
            self.hooks.call("post_request", self.worker, request, environ, response)

        try:
            result = self.app(environ, start)
        except BaseException:
            done()
            raise
        if "post_request" not in self.hooks:
            return result
        return _Counted(result, response, done)


class _Counted:
    """The application's iterable, counting the body bytes; ``done`` runs on close()."""

    def __init__(self, result: Iterable[bytes], response: HookResponse,
                 done: Callable[[], None]) -> None:
        self.result = result
        self.response = response
        self.done = done

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result:
            self.response.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            self.done()
