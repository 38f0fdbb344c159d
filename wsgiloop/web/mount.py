"""WSGI applications mounted in a native application, under a path prefix.

Promises:

* a mount takes its prefix itself and everything under ``prefix/``;
* served natively, the app runs behind ``WSGIGateway(app, root_path=prefix)``, so
  ``SCRIPT_NAME`` is the prefix and ``PATH_INFO`` the rest, exactly as the WSGI server
  runs apps; called through the WSGI convention (:meth:`WSGIMount.call_wsgi`), the app
  gets the caller's environ with ``SCRIPT_NAME`` extended by the prefix and ``PATH_INFO``
  shortened, and its result is passed through untouched;
* a mount pattern must be a literal path (``^/legacy/?(.*)$`` style suffixes allowed).

This is the one module of :mod:`wsgiloop.web` that knows the WSGI gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..wsgi import WSGIGateway
from .routing import PathPrefix, Rule, literal_prefix

__all__ = ["WSGIMount", "mount", "mount_rule"]


class WSGIMount:
    """A WSGI application served under ``prefix`` through a :class:`WSGIGateway`.

    ``gateway_options`` go to the gateway (``threads=N`` to run the app on a pool).
    """

    def __init__(self, app: Callable[..., Any], prefix: str = "", **gateway_options: Any) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.gateway = WSGIGateway(app, root_path=self.prefix, **gateway_options)

    def __call__(self, request: Any, responder: Any) -> None:
        """The request delegate: the gateway runs the app for this request."""
        self.gateway(request, responder)

    def call_wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]
                  ) -> Iterable[bytes]:
        """Run the app for a WSGI caller's ``environ`` (whose ``PATH_INFO`` is under
        the prefix), with the prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME``."""
        prefix = self.prefix.encode("utf-8").decode("latin-1")  # as WSGI spells paths
        mounted = dict(environ)
        mounted["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + prefix
        mounted["PATH_INFO"] = environ.get("PATH_INFO", "")[len(prefix):]
        return self.app(mounted, start_response)

    def __repr__(self) -> str:
        return f"WSGIMount({self.prefix!r}, {self.app!r})"


def mount(prefix: str, app: Callable[..., Any], name: str | None = None,
          **gateway_options: Any) -> Rule:
    """A rule serving WSGI ``app`` under ``prefix`` (``SCRIPT_NAME`` = ``prefix``)."""
    prefix = literal_prefix(prefix)
    return Rule(prefix, WSGIMount(app, prefix, **gateway_options), name=name,
                matcher=PathPrefix(prefix))


def mount_rule(rule: Rule) -> Rule:
    """The rule that mounts ``rule.target`` (a WSGI application, or a :class:`WSGIMount`
    and its prefix) under the literal path ``rule.pattern`` names; a plain application
    is given ``rule.kwargs`` as gateway options."""
    target = rule.target
    if isinstance(target, WSGIMount) and isinstance(rule.matcher, PathPrefix):
        return rule  # made by mount()
    if not isinstance(target, WSGIMount):
        target = WSGIMount(target, literal_prefix(rule.pattern), **rule.kwargs)
    return Rule(rule.pattern, target, name=rule.name, matcher=PathPrefix(target.prefix))
