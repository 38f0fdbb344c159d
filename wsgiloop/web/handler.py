"""Request handlers: subclass :class:`RequestHandler` and define ``get``, ``post``, ...

A handler object serves one request.  Its HTTP methods may be plain functions or
``async def``; an async one runs as a :class:`wsgiloop.aio.Task` on the loop.

Promises:

* the response is finished when the method returns (or its coroutine ends) unless it
  already was; :meth:`RequestHandler.finish` sends status, headers and body in one go,
  with a Content-Length, and answers a matching ``If-None-Match`` with 304;
* an exception in ``prepare`` or a method becomes an error page: :class:`HTTPError`
  gives its status, anything else a 500 with the full traceback in the
  ``wsgiloop.error`` log.  The page shows no traceback unless the application's
  ``debug`` setting is on.  After the headers went out, an error cuts the connection;
* :meth:`RequestHandler.flush` sends what was written so far (the first flush sends the
  headers; without a Content-Length the server frames the body as chunked) and returns
  a Future that resolves once the client's buffer is below its high-water mark -- await
  it in a loop that streams, to get back-pressure.  Once the client has gone it fails
  with :class:`ClientDisconnected`;
* if the client disconnects while the handler works, ``closed`` turns true and
  :meth:`RequestHandler.on_connection_close` runs; with ``cancel_on_disconnect = True``
  an async handler is also cancelled at the ``await`` where it waits.  A client that
  only shut its sending side (a half-close) still gets the answer; TCP cannot tell
  that from a close until something is sent, so a client that closed is noticed when
  the answer fails to go out -- except by a ``cancel_on_disconnect`` handler, which
  waits for events rather than works, and counts the client's end of input as the
  disconnect;
* :meth:`RequestHandler.on_finish` runs exactly once, after the response was sent or
  the request was abandoned.
"""

from __future__ import annotations

import datetime
import hashlib
import html
import http.client
import inspect
import json
import logging
import numbers
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ..aio import Task
from ..ioloop import CancelledError, Future
from . import signing
from .errors import ClientDisconnected, HTTPError, MissingArgumentError
from .httputil import FormError, etag_matches, expires_in_days, format_set_cookie
from .request import WebRequest

if TYPE_CHECKING:
    from .application import Application

log = logging.getLogger("wsgiloop.error")

__all__ = ["ErrorHandler", "RequestHandler"]

_ARG_DEFAULT: Any = object()
#: The handler attribute of each usual method: the same string object on every request,
#: which attribute look-ups find in the type's cache (a lower-cased copy is never there).
_ATTRIBUTES = {"GET": "get", "HEAD": "head", "POST": "post", "DELETE": "delete",
               "PATCH": "patch", "PUT": "put", "OPTIONS": "options"}
_METHODS = tuple(_ATTRIBUTES)
_DEFAULT_CONTENT_TYPE = ("Content-Type", "text/html; charset=UTF-8")
_ENTITY_HEADERS = ("Content-Length", "Content-Type", "Content-Encoding", "Content-Language",
                   "Content-Range", "Transfer-Encoding")


def _header_value(name: str, value: Any) -> str:
    """``value`` as the text of header field ``name``: a str as it is, bytes as latin-1,
    an integer in decimal, a datetime as an HTTP date; ValueError for CR, LF or NUL."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = value.decode("latin-1")
    elif isinstance(value, (int, numbers.Integral)):
        text = str(value)
    elif isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        text = value.astimezone(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    else:
        raise TypeError(f"unsupported value for header {name!r}: {value!r}")
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError(f"header {name!r}: CR, LF or NUL in the value")
    return text


class RequestHandler:
    """Serves one request; subclass it and define the HTTP methods you answer.

    Class attributes: ``SUPPORTED_METHODS`` (methods this handler may ever answer; others
    get 405) and ``cancel_on_disconnect`` (cancel an async handler when its client
    leaves; off by default, so work that must complete is not cut short).

    HEAD is answered by ``get`` when there is no ``head`` (the body is dropped); OPTIONS,
    when there is no ``options``, by 204 with an ``Allow`` field; any other method the
    class lacks by 405 with ``Allow``.
    """

    SUPPORTED_METHODS: tuple[str, ...] = _METHODS
    cancel_on_disconnect: bool = False

    # Per-request state that is seldom used: the starting values are shared here (an
    # instance sets its own when they change), so that making a handler costs less.
    _task: Task | None = None
    _flush_waiters: list[Future] | tuple[()] = ()
    _json: Any = _ARG_DEFAULT
    _current_user: Any = _ARG_DEFAULT
    _abort_hooked = False
    #: The route's positional and keyword arguments (set when the handler runs).
    path_args: Sequence[str] = ()
    path_kwargs: Mapping[str, str] = MappingProxyType({})

    @property
    def task(self) -> Task | None:
        """The task running an ``async def`` method of this handler, or None."""
        return self._task

    def __init__(self, application: Application, request: WebRequest, responder: Any,
                 **kwargs: Any) -> None:
        self.application = application
        self.request = request
        self._responder = responder
        # State read on every request (on the instance, where it is found faster than a
        # class's default).
        self._finished = False
        self._headers_written = False
        self._auto_finish = True
        self._completed = False
        #: True once the client has gone away.
        self.closed = False
        self.clear()
        if kwargs:  # (see _execute: a plain call costs less)
            self.initialize(**kwargs)
        else:
            self.initialize()

    @property
    def settings(self) -> dict[str, Any]:
        """The application's settings."""
        return self.application.settings

    # -- hooks -----------------------------------------------------------------------------

    def initialize(self, **kwargs: Any) -> None:
        """Receives the rule's keyword arguments; the default accepts none."""
        if kwargs:
            raise TypeError(f"{type(self).__name__}.initialize() got unexpected keyword "
                            f"arguments {sorted(kwargs)}")

    def prepare(self) -> Awaitable[None] | None:
        """Runs before the method; may be async; finishing here skips the method."""
        return None

    def on_finish(self) -> None:
        """Runs once after the request is done (response sent, or client gone)."""

    def on_connection_close(self) -> None:
        """Runs if the client disconnects before the response is finished."""

    def set_default_headers(self) -> None:
        """Set headers every response of this handler starts with (also error pages)."""

    def get_current_user(self) -> Any:
        """Override to identify the user; :attr:`current_user` caches the result."""
        return None

    @property
    def current_user(self) -> Any:
        if self._current_user is _ARG_DEFAULT:
            self._current_user = self.get_current_user()
        return self._current_user

    @current_user.setter
    def current_user(self, value: Any) -> None:
        self._current_user = value

    # -- request side ----------------------------------------------------------------------

    def _get_values(self, source: dict[str, list[str]], name: str, strip: bool) -> list[str]:
        values = source.get(name, [])
        return [v.strip() for v in values] if strip else list(values)

    def _one(self, values: list[str], name: str, default: Any) -> Any:
        if values:
            return values[-1]
        if default is _ARG_DEFAULT:
            raise MissingArgumentError(name)
        return default

    def get_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        """The last value of query-or-body argument ``name``; without a default, a
        missing argument is a 400."""
        return self._one(self.get_arguments(name, strip), name, default)

    def get_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_values(self._form(lambda r: r.arguments), name, strip)

    def get_query_argument(self, name: str, default: Any = _ARG_DEFAULT,
                           strip: bool = True) -> Any:
        return self._one(self.get_query_arguments(name, strip), name, default)

    def get_query_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_values(self._form(lambda r: r.query_arguments), name, strip)

    def get_body_argument(self, name: str, default: Any = _ARG_DEFAULT,
                          strip: bool = True) -> Any:
        return self._one(self.get_body_arguments(name, strip), name, default)

    def get_body_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_values(self._form(lambda r: r.body_arguments), name, strip)

    def _form(self, get: Callable[[WebRequest], Any]) -> Any:
        try:
            return get(self.request)
        except FormError as exc:
            raise HTTPError(400, "%s", str(exc)) from None

    def get_json(self) -> Any:
        """The body parsed as JSON; 400 when it is empty or not JSON (or not UTF-8)."""
        if self._json is _ARG_DEFAULT:
            try:
                self._json = json.loads(self.request.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise HTTPError(400, "invalid JSON body: %s", exc,
                                reason="Invalid JSON") from None
        return self._json

    @property
    def json(self) -> Any:
        return self.get_json()

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        return self.request.cookies.get(name, default)

    # -- response side ---------------------------------------------------------------------

    def clear(self) -> None:
        """Reset headers, status and body to the defaults (not possible once flushed)."""
        # The response's fields: lower-cased name -> (name, value); the further values of
        # a field given more than once (add_header) are kept, in order, in _repeated.
        self._fields: dict[str, tuple[str, str]] = {"content-type": _DEFAULT_CONTENT_TYPE}
        self._repeated: list[tuple[str, str]] | tuple[()] = ()
        self.set_default_headers()
        self._write_buffer: list[bytes] = []
        self._status_code = 200
        self._status = "200 OK"  # the status line's code and reason

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        if reason is None:
            if status_code not in http.client.responses:
                raise ValueError(f"unknown status code {status_code}; give a reason")
            reason = http.client.responses[status_code]
        if not 100 <= status_code <= 999:
            raise ValueError(f"invalid status code {status_code}")
        self._status_code = status_code
        self._status = f"{status_code} {_header_value('status reason', reason)}"

    def get_status(self) -> int:
        return self._status_code

    def set_header(self, name: str, value: Any) -> None:
        """Set field ``name`` to ``value`` (str, bytes, an int or a datetime), replacing
        its values; ValueError for CR, LF or NUL in it."""
        if type(value) is not str or "\r" in value or "\n" in value or "\0" in value:
            value = _header_value(name, value)  # converts, or raises ValueError
        key = name.lower()
        self._fields[key] = (name, value)
        if self._repeated:
            self._drop_repeated(key)

    def add_header(self, name: str, value: Any) -> None:
        """Add a value to field ``name`` (it is sent once per value)."""
        if type(value) is not str or "\r" in value or "\n" in value or "\0" in value:
            value = _header_value(name, value)
        pair = (name, value)
        first = self._fields.setdefault(name.lower(), pair)
        if first is not pair:  # the field was there: one more value
            if not self._repeated:
                self._repeated = []
            self._repeated.append((first[0], value))  # type: ignore[union-attr]

    def clear_header(self, name: str) -> None:
        key = name.lower()
        self._fields.pop(key, None)
        if self._repeated:
            self._drop_repeated(key)

    def _drop_repeated(self, key: str) -> None:
        self._repeated = [pair for pair in self._repeated if pair[0].lower() != key]

    def get_response_header(self, name: str, default: str | None = None) -> str | None:
        """The value of response field ``name`` (several joined with ", "), or ``default``."""
        key = name.lower()
        first = self._fields.get(key)
        if first is None:
            return default
        if not self._repeated:
            return first[1]
        return ", ".join([first[1]] + [value for field, value in self._repeated
                                       if field.lower() == key])

    def _header_list(self) -> list[tuple[str, str]]:
        """The response's fields as sent: each name once, then the repeated values."""
        headers = [*self._fields.values()]
        if self._repeated:
            headers += self._repeated
        return headers

    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        """Buffer ``chunk``: bytes as they are, str as UTF-8, a dict as JSON (and the
        Content-Type becomes ``application/json``)."""
        if self._finished:
            raise RuntimeError("write() after finish()")
        if type(chunk) is bytes:
            data = chunk
        elif isinstance(chunk, (bytes, bytearray, memoryview)):
            data = bytes(chunk)
        elif isinstance(chunk, str):
            data = chunk.encode("utf-8")
        elif isinstance(chunk, dict):
            data = json.dumps(chunk).replace("</", "<\\/").encode("utf-8")
            self.set_header("Content-Type", "application/json; charset=UTF-8")
        else:
            raise TypeError(f"write() takes str, bytes or dict, not {type(chunk).__name__}"
                            + (" (wrap a list in a dict)" if isinstance(chunk, list) else ""))
        self._write_buffer.append(data)

    def redirect(self, url: str, status: int = 302, permanent: bool | None = None) -> None:
        """Finish with a redirect to ``url`` (relative URLs resolve against the request)."""
        if self._headers_written:
            raise RuntimeError("cannot redirect after the headers were sent")
        if permanent is not None:
            status = 301 if permanent else 302
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect status must be 3xx, not {status}")
        self.set_status(status)
        self.set_header("Location", urljoin(self.request.uri, url))
        self.finish()

    def set_cookie(self, name: str, value: str, path: str | None = "/",
                   domain: str | None = None, expires: Any = None,
                   expires_days: float | None = None, max_age: int | None = None,
                   secure: bool = False, httponly: bool = False,
                   samesite: str | None = None) -> None:
        """Add a ``Set-Cookie`` field; ValueError for a name or value that is unsafe."""
        if expires_days is not None and expires is None:
            expires = expires_in_days(expires_days)
        self.add_header("Set-Cookie", format_set_cookie(
            name, value, path=path, domain=domain, expires=expires, max_age=max_age,
            secure=secure, httponly=httponly, samesite=samesite))

    def clear_cookie(self, name: str, path: str | None = "/", domain: str | None = None) -> None:
        """Tell the client to drop cookie ``name`` (same path and domain as it was set)."""
        self.set_cookie(name, "", path=path, domain=domain, expires=0, max_age=0)

    def _cookie_secret(self) -> str | bytes:
        secret = self.settings.get("cookie_secret")
        if not secret:
            raise RuntimeError("signed cookies need the application's cookie_secret setting")
        return secret

    def create_signed_value(self, name: str, value: str | bytes) -> str:
        return signing.create_signed_value(self._cookie_secret(), name, value)

    def set_signed_cookie(self, name: str, value: str | bytes, expires_days: float | None = 30,
                          **kwargs: Any) -> None:
        """Set a cookie signed with HMAC-SHA256 and a timestamp (see :mod:`.signing`)."""
        self.set_cookie(name, self.create_signed_value(name, value),
                        expires_days=expires_days, **kwargs)

    def get_signed_cookie(self, name: str, value: str | None = None,
                          max_age_days: float = 31) -> bytes | None:
        """The verified value of a signed cookie, or None (missing, forged or too old)."""
        if value is None:
            value = self.get_cookie(name)
        return signing.decode_signed_value(self._cookie_secret(), name, value,
                                           max_age_days=max_age_days)

    # -- ETags -------------------------------------------------------------------------------

    def compute_etag(self) -> str | None:
        """The ETag for the buffered body (None: no ETag)."""
        return f'"{hashlib.sha1(b"".join(self._write_buffer)).hexdigest()}"'

    def check_etag_header(self) -> bool:
        """True when the request's If-None-Match matches the response's ETag."""
        conditions = self.request.header_values("If-None-Match")
        if not conditions:
            return False
        etag = self.get_response_header("ETag")
        return bool(etag) and etag_matches(", ".join(conditions), etag)  # type: ignore[arg-type]

    # -- sending ---------------------------------------------------------------------------

    def _write_headers(self) -> None:
        """Fix the status and headers with the server (sends nothing yet)."""
        self._hook_abort()
        self._responder.start(self._status, self._header_list())
        self._headers_written = True

    def flush(self) -> Future:
        """Send what was written so far; see the module docstring for the Future."""
        if self._finished:
            raise RuntimeError("flush() after finish()")
        future = self._responder.loop.create_future()
        if self.closed:
            future.set_exception(ClientDisconnected())
            return future
        if not self._headers_written:
            self._write_headers()
        data = b"".join(self._write_buffer)
        self._write_buffer = []
        if self._responder.write(data):
            future.set_result(None)
        else:
            if self._flush_waiters:
                self._flush_waiters.append(future)  # type: ignore[union-attr]
            else:
                self._flush_waiters = [future]
                self._responder.when_writable(self._on_writable)
        return future

    def _on_writable(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> None:
        """Complete the response; nothing may be written after it.  Unless it was flushed,
        status, headers and body go out in one go, with a Content-Length and, for a 200
        to GET or HEAD, an ETag (a matching If-None-Match turns it into a 304)."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        if self._headers_written:  # flushed before: the rest of the body, then the end
            if self._write_buffer and not self.closed:
                self._responder.write(b"".join(self._write_buffer))
            if not self.closed:
                self._responder.finish()
        else:
            code = self._status_code
            method = self.request.method
            if code == 200 and "etag" not in self._fields and method in ("GET", "HEAD"):
                etag = self.compute_etag()
                if etag:
                    self.set_header("ETag", etag)
                    if self.check_etag_header():
                        self._write_buffer = []
                        self.set_status(304)
                        code = self._status_code
            if code != 200 and (code < 200 or code == 204 or code == 304):
                body = b""
                for name in _ENTITY_HEADERS:
                    self.clear_header(name)
            else:
                body = b"".join(self._write_buffer)
                # The responder adds the Content-Length of a body it is handed whole,
                # except in an answer to HEAD, which goes without its body.
                if method == "HEAD" and "content-length" not in self._fields:
                    self.set_header("Content-Length", str(len(body)))
            if not self.closed:
                self._responder.respond(self._status, self._header_list(), body)
            self._headers_written = True
        self._write_buffer = []
        self._finished = True
        self._complete()

    def _finish_quietly(self) -> None:
        """End a request whose client has gone (nothing is sent)."""
        if not self._finished:
            self._finished = True
            self._write_buffer = []
            self._complete()

    def _complete(self) -> None:
        if self._completed:
            return
        self._completed = True
        try:
            self.on_finish()
        except Exception:
            log.exception("error in %s.on_finish", type(self).__name__)

    # -- errors ------------------------------------------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Answer with an error page from :meth:`write_error` (``exc_info`` and
        ``reason`` in ``kwargs`` are passed on).  Cuts the connection instead when the
        headers already went out."""
        if self._headers_written:
            if not self._finished:
                log.error("cannot send a %d error after the headers went out; closing "
                          "the connection", status_code)
                if not self.closed:
                    self._responder.abort()
                self._finish_quietly()
            return
        self.clear()
        reason = kwargs.get("reason")
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, HTTPError):
            reason = reason or error.reason
            for name, value in error.headers.items():
                self.set_header(name, value)
        if reason is None and status_code not in http.client.responses:
            reason = "Unknown"
        self.set_status(status_code, reason=reason)
        if self.request.header_values("Upgrade"):
            # A refused upgrade (a WebSocket handshake that is wrong, or to a path with no
            # WebSocketHandler): the client may have sent the new protocol's bytes behind
            # it without waiting for the answer, and they must never be read as HTTP.
            self.set_header("Connection", "close")
        try:
            self.write_error(status_code, **kwargs)
        except Exception:
            log.exception("error in %s.write_error", type(self).__name__)
        if not self._finished:
            try:
                self.finish()
            except Exception:
                log.exception("error sending the error page")
                if not self.closed and not self._headers_written:
                    self._responder.abort()
                self._finish_quietly()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write the error page (override to customise).  The default is a small HTML
        page; with the ``debug`` setting and ``exc_info`` in ``kwargs`` it shows the
        traceback."""
        title = f"{status_code}: {html.escape(self._status.partition(' ')[2])}"
        exc_info = kwargs.get("exc_info")
        detail = ""
        if self.settings.get("debug") and exc_info:
            lines = traceback.format_exception(*exc_info)
            detail = "<pre>" + html.escape("".join(lines)) + "</pre>"
        self.finish(f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>"
                    f"<body><h1>{title}</h1>{detail}</body></html>\n")

    def log_exception(self, exc: BaseException) -> None:
        """Log an exception from the handler: HTTPErrors with a log message as a
        warning, anything else with its traceback as an error."""
        if isinstance(exc, HTTPError):
            if exc.log_message:
                log.warning("%d %s %s: %s", exc.status_code, self.request.method,
                            self.request.uri, exc.formatted_log_message())
            return
        log.error("error handling %s %s", self.request.method, self.request.uri,
                  exc_info=exc)

    def _handle_exception(self, exc: BaseException) -> None:
        if isinstance(exc, ClientDisconnected):
            # Nobody reads its traceback, whose frames (this handler's among them) would
            # otherwise wait for the cycle collector with the connection.
            exc.__traceback__ = None
            self._finish_quietly()
            return
        self.log_exception(exc)
        if self.closed:
            self._finish_quietly()
            return
        if self._finished:
            return
        status = exc.status_code if isinstance(exc, HTTPError) else 500
        self.send_error(status, exc_info=(type(exc), exc, exc.__traceback__))

    # -- running -----------------------------------------------------------------------------

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The methods this handler answers (for ``Allow``)."""
        allowed = [m for m in cls.SUPPORTED_METHODS if callable(getattr(cls, m.lower(), None))]
        if "GET" in allowed and "HEAD" not in allowed and "HEAD" in cls.SUPPORTED_METHODS:
            allowed.append("HEAD")
        if "OPTIONS" not in allowed and "OPTIONS" in cls.SUPPORTED_METHODS:
            allowed.append("OPTIONS")
        return allowed

    def _method_for(self, method: str) -> Callable[..., Any]:
        if method in self.SUPPORTED_METHODS:
            function = getattr(self, method.lower(), None)
            if callable(function):
                return function
            if method == "HEAD" and callable(getattr(self, "get", None)):
                return self.get  # type: ignore[attr-defined]
            if method == "OPTIONS":
                return self._default_options
        raise HTTPError(405, headers={"Allow": ", ".join(self.allowed_methods())})

    def _default_options(self, *args: Any, **kwargs: Any) -> None:
        self.set_status(204)
        self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.finish()

    def _execute(self, args: list[str], kwargs: dict[str, str]) -> None:
        """Run prepare and the method; called once by the application."""
        self.path_args, self.path_kwargs = args, kwargs
        try:
            result = self.prepare()
            if result is not None and inspect.isawaitable(result):
                self._hook_abort()
                self._task = Task(self._responder.loop, self._run_async(result, True))
                return
            if self._finished:
                return
            method = self.request.method
            function = getattr(self, _ATTRIBUTES.get(method) or method.lower(), None) \
                if method in self.SUPPORTED_METHODS else None
            if function is None or not callable(function):
                function = self._method_for(method)
            # A call without the unpacking when the route gave no arguments (most do):
            # 1.3k fewer instructions per request with the one in __init__.
            result = function(*args, **kwargs) if args or kwargs else function()
            if result is not None and inspect.isawaitable(result):
                self._hook_abort()
                self._task = Task(self._responder.loop, self._run_async(result, False))
                return
            if self._auto_finish and not self._finished:
                self.finish()
        except Exception as exc:
            self._handle_exception(exc)
        finally:
            # The client cannot be seen leaving while this runs on the loop thread, so
            # a handler finished by now never needs to hear about it.
            if not self._finished:
                self._hook_abort()

    def _hook_abort(self) -> None:
        """Have :meth:`_on_connection_lost` called if the client leaves (once)."""
        if not self._abort_hooked:
            self._abort_hooked = True
            self._responder.on_abort(self._on_connection_lost)
            if self.cancel_on_disconnect:
                self._responder.on_client_eof(self._on_client_eof)

    def _on_client_eof(self) -> None:
        """The client sends no more: for a handler that waits for events, it has left."""
        if not self._finished and not self.closed:
            self._responder.abort()  # runs no abort callback: this is the one
            self._on_connection_lost()

    async def _run_async(self, pending: Awaitable[Any], from_prepare: bool) -> None:
        try:
            await pending
            if from_prepare and not self._finished:
                result = self._method_for(self.request.method)(*self.path_args,
                                                                **self.path_kwargs)
                if result is not None and inspect.isawaitable(result):
                    await result
            if self._auto_finish and not self._finished:
                if self.closed:
                    self._finish_quietly()
                else:
                    self.finish()
        except CancelledError:
            if self.closed:
                self._finish_quietly()
            elif not self._finished:
                log.warning("%s %s: handler cancelled", self.request.method, self.request.uri)
                self.send_error(503)
        except Exception as exc:
            self._handle_exception(exc)

    def _on_connection_lost(self) -> None:
        if self._finished:
            return
        self.closed = True
        waiters, self._flush_waiters = self._flush_waiters, []
        for future in waiters:
            if not future.done():
                future.set_exception(ClientDisconnected())
        try:
            self.on_connection_close()
        except Exception:
            log.exception("error in %s.on_connection_close", type(self).__name__)
        task = self._task
        if task is not None and not task.done():
            if self.cancel_on_disconnect:
                task.cancel()
        elif not self._auto_finish:
            self._finish_quietly()

    # -- URLs --------------------------------------------------------------------------------

    def reverse_url(self, name: str, *args: Any, **kwargs: Any) -> str:
        return self.application.reverse_url(name, *args, **kwargs)

    def static_url(self, path: str, include_version: bool = True) -> str:
        return self.application.static_url(path, include_version)


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (404 for unrouted paths)."""

    def initialize(self, status_code: int = 404) -> None:  # type: ignore[override]
        self._error_status = status_code

    def prepare(self) -> None:
        raise HTTPError(self._error_status)
