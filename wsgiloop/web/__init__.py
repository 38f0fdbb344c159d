"""Native handlers: Tornado-style routed request handlers on wsgiloop's own event loop.

::

    from wsgiloop.web import Application, RequestHandler

    class Hello(RequestHandler):
        async def get(self, name):
            self.write({"hello": name})

    application = Application([(r"/hello/([^/]+)", Hello, {}, "hello")],
                              cookie_secret="...", static_path="static")

``wsgiloop module:application`` serves it natively (handlers run on the loop thread;
async ones as tasks); ``application(environ, start_response)`` also works, as a plain
WSGI application.  WSGI applications can be mounted under a prefix with
:func:`mount` or a rule ``(r"/legacy", wsgi_app)``.

Modules, bottom-up (each imports only modules before it): :mod:`.errors` (HTTPError and
friends), :mod:`.httputil` (headers, forms, cookies, ETags), :mod:`.signing` (signed
values), :mod:`.routing` (rules, matchers, reversing; generic), :mod:`.request` (the
request object), :mod:`.handler` (RequestHandler), :mod:`.websocket` (WebSocketHandler),
:mod:`.static` (files), :mod:`.mount`
(WSGI apps under a prefix; the only one that knows the WSGI gateway), :mod:`.inprocess`
(the WSGI calling convention), :mod:`.application` (what serves a request).
"""

from __future__ import annotations

from .application import Application
from .errors import ClientDisconnected, HTTPError, MissingArgumentError
from .handler import ErrorHandler, RequestHandler
from .httputil import FormError, Headers, UploadedFile
from .mount import WSGIMount, mount
from .request import WebRequest
from .routing import Rule, url
from .static import StaticFileHandler
from .websocket import WebSocketClosedError, WebSocketHandler

__all__ = [
    "Application", "ClientDisconnected", "ErrorHandler", "FormError", "HTTPError", "Headers",
    "MissingArgumentError", "RequestHandler", "Rule", "StaticFileHandler", "UploadedFile",
    "WSGIMount", "WebRequest", "WebSocketClosedError", "WebSocketHandler", "mount", "url",
]
