"""The native application: routes each request to a handler, a mounted WSGI app, or 404.

:class:`Application` is a request delegate: the server calls
``application(request, responder)`` on the loop thread, and handlers answer through the
responder without leaving the loop.  Called as ``application(environ, start_response)``
it is a WSGI application instead (see :mod:`.inprocess`), so ``webtest.TestApp`` and
any WSGI server can run it -- async handlers then run on a private loop, one request at
a time.

Settings (keyword arguments, all optional):

* ``debug``: error pages show the traceback;
* ``cookie_secret``: the key for signed cookies;
* ``static_path``, ``static_url_prefix`` (``/static/``), ``static_handler_class``,
  ``static_handler_args``, ``static_default_filename``: serve files under the prefix;
* ``default_handler_class`` and ``default_handler_args``: the handler for unrouted
  paths (instead of a 404 page);
* ``wsgi_fallback``: a WSGI application that gets every unrouted request (at the root:
  ``SCRIPT_NAME`` is empty).

Promises: an unrouted path is 404 (or the fallback); a path that is not UTF-8 once
percent-decoded is 400; ``OPTIONS *`` is answered with the methods handlers may use; a
request with ``Expect: 100-continue`` gets its ``100 Continue`` and its whole body
before the handler runs; an exception while making the handler is a 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from ..http.response import error_response
from .handler import ErrorHandler, RequestHandler
from .mount import WSGIMount, mount_rule
from .request import WebRequest
from .routing import Router, Rule, to_rule
from .static import StaticFileHandler

log = logging.getLogger("wsgiloop.error")

__all__ = ["Application"]

_ALL_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class Application:
    """A set of routes and settings.  See the module docstring."""

    #: Marks an object the server may call as ``delegate(request, responder)``.
    wsgiloop_native = True

    def __init__(self, rules: Iterable[Rule | Sequence[Any]] | None = None,
                 **settings: Any) -> None:
        self.settings: dict[str, Any] = settings
        self.router = Router()
        initial: list[Rule | Sequence[Any]] = []
        static_path = settings.get("static_path")
        if static_path:
            prefix = settings.setdefault("static_url_prefix", "/static/")
            handler_class = settings.get("static_handler_class", StaticFileHandler)
            handler_args = dict(settings.get("static_handler_args") or {})
            handler_args.setdefault("path", static_path)
            if settings.get("static_default_filename"):
                handler_args.setdefault("default_filename", settings["static_default_filename"])
            initial.append(Rule(re.escape(prefix) + "(.*)", handler_class, handler_args,
                                name="static"))
        initial.extend(rules or [])
        self.router.add(".*", [self._route(spec) for spec in initial])
        fallback = settings.get("wsgi_fallback")
        #: What serves an unrouted path: the fallback WSGI app, else the default handler.
        self._unrouted = Rule("", WSGIMount(fallback)) if fallback else Rule(
            "", settings.get("default_handler_class") or ErrorHandler,
            settings.get("default_handler_args"))

    def add_handlers(self, host_pattern: str, rules: Iterable[Rule | Sequence[Any]]) -> None:
        """Add rules for requests whose host (without port) fully matches
        ``host_pattern``; they are tried before the rules given to the constructor."""
        self.router.add(host_pattern, [self._route(spec) for spec in rules])

    def reverse_url(self, name: str, *args: Any, **kwargs: Any) -> str:
        """The path of the rule called ``name``, its groups filled with ``args``."""
        return self.router.reverse(name, *args, **kwargs)

    def static_url(self, path: str, include_version: bool = True) -> str:
        """The URL of static file ``path``, with ``?v=`` (a tag that changes with the
        file) unless ``include_version`` is false."""
        static_path = self.settings.get("static_path")
        if not static_path:
            raise RuntimeError("static_url() needs the static_path setting")
        handler_class = self.settings.get("static_handler_class", StaticFileHandler)
        url = self.settings.get("static_url_prefix", "/static/") + path.lstrip("/")
        if include_version:
            version = handler_class.get_version(static_path, path)
            if version:
                url += f"?v={version}"
        return url

    # -- resolving ---------------------------------------------------------------------------

    @staticmethod
    def _route(spec: Rule | Sequence[Any]) -> Rule:
        """The rule for ``spec``: a handler class is routed by the rule's pattern; a
        WSGI application (or a :class:`WSGIMount`) is mounted under the literal path
        the pattern names."""
        rule = to_rule(spec)
        target = rule.target
        if isinstance(target, type) and issubclass(target, RequestHandler):
            return rule
        if callable(target):
            return mount_rule(rule)
        raise TypeError(f"a rule's target must be a RequestHandler subclass or a WSGI "
                        f"application, not {target!r}")

    def resolve(self, host: str, path: str) -> tuple[Rule, list[Any], dict[str, Any]]:
        """The rule that serves ``path`` (decoded) on ``host`` (a Host value), with the
        arguments it takes from the path: ``(rule, args, kwargs)``.  The rule's target is
        a handler class (``rule.kwargs`` go to its ``initialize``) or a
        :class:`WSGIMount`; an unrouted path gets the fallback or the default handler."""
        return self.router.lookup(host, path) or (self._unrouted, [], {})

    # -- serving -------------------------------------------------------------------------------

    def __call__(self, request: Any, responder: Any) -> Any:
        """``(request, responder)`` from the server, or ``(environ, start_response)``."""
        if isinstance(request, dict):
            from .inprocess import call_as_wsgi  # only WSGI callers pay for the import
            return call_as_wsgi(self, request, responder)
        self.serve(request, responder)
        return None

    def serve(self, request: Any, responder: Any) -> None:
        """The request delegate (loop thread)."""
        head = request.head
        path = head.path
        if "%" in path:
            path = decode_path(path)
            if path is None:
                self._bad_request(responder)
                return
        elif head.target == "*":  # (a "*" target has no "%")
            if head.method == "OPTIONS":
                responder.respond("200 OK", [("Allow", _ALL_METHODS)], b"")
            else:
                self._bad_request(responder)
            return
        rule, args, kwargs = self.resolve(head.host or "", path)
        target = rule.target
        if isinstance(target, WSGIMount):
            target(request, responder)
        elif request.body_deferred:
            self._after_body(rule, request, responder, path, args, kwargs)
        else:
            self.run_handler(rule, request, responder, path, args, kwargs)

    def _after_body(self, rule: Rule, request: Any, responder: Any, path: str,
                    args: list[Any], kwargs: dict[str, Any]) -> None:
        """Fetch a deferred (``100-continue``) body, then run the handler."""
        def body_arrived(error: BaseException | None) -> None:
            if error is None:
                self.run_handler(rule, request, responder, path, args, kwargs)
            elif request.protocol_error is not None and not responder.client_gone:
                error = request.protocol_error
                responder.respond(*error_response(error.status, error.detail, close=True))

        responder.receive_deferred_body(request, body_arrived)

    def run_handler(self, rule: Rule, request: Any, responder: Any, path: str,
                    args: list[Any], kwargs: dict[str, Any]) -> RequestHandler:
        """Make the handler of ``rule`` for ``request`` and run it; returns it."""
        web_request = WebRequest(request, path)
        try:
            handler = rule.target(self, web_request, responder, **rule.kwargs)
        except Exception as exc:
            return self._handler_failed(rule.target, web_request, responder, exc)
        handler._execute(args, kwargs)
        return handler

    def _handler_failed(self, handler_class: type[RequestHandler], web_request: WebRequest,
                        responder: Any, exc: Exception) -> RequestHandler:
        """Answer 500 when making the handler raised ``exc``."""
        log.error("error creating %s for %s %s", handler_class.__name__,
                  web_request.method, web_request.uri, exc_info=exc)
        handler = RequestHandler(self, web_request, responder)
        handler.send_error(500, exc_info=(type(exc), exc, exc.__traceback__))
        return handler

    @staticmethod
    def _bad_request(responder: Any) -> None:
        responder.respond(*error_response(400, "the path is not valid UTF-8", close=True))


def decode_path(raw: str) -> str | None:
    """The percent-decoded path (UTF-8), or None when it does not decode."""
    if "%" not in raw:
        return raw
    try:
        return unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
