"""gunicorn's ``pre_request`` and ``post_request`` hooks for WSGI applications: the
request and response objects they are given, the middleware that runs ``pre_request``,
and the per-response callback that runs ``post_request`` once the response is sent.

The request has ``method``, ``uri``, ``path``, ``query``, ``version``, ``headers`` and
``remote_addr``; the response ``status``, ``status_code``, ``headers`` and ``sent``
(body bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .workers.hooks import Hooks


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
