"""Native (``wsgiloop.web``) applications for the tests.

``application`` is what ``tests/test_web_wire.py`` serves with
``python -m wsgiloop native_apps:application``; ``debug_application`` is the same routes
with ``debug=True``.  Static files come from ``$NATIVE_STATIC_DIR`` (a temporary
directory with one file when unset).  A Flask app is mounted under ``/legacy``.

Long polling: ``GET /poll`` waits for the next ``POST /publish`` (body: the message);
``GET /waiters`` reports how many are waiting, counted by the handlers themselves and by
the Event they wait on.  A poller whose client goes away is cancelled and leaves both
counts.
"""

from __future__ import annotations

import os
import tempfile

from flask import Flask, jsonify, request, url_for

from wsgiloop import aio
from wsgiloop.web import Application, HTTPError, RequestHandler, mount

# -- handlers ----------------------------------------------------------------------------------


class Mode(RequestHandler):
    """Says how the request reached the handler: natively or through WSGI."""

    def get(self) -> None:
        native = not type(self._responder).__name__.startswith("Collecting")
        self.write("native" if native else "wsgi")


class Hello(RequestHandler):
    def get(self, name: str = "world") -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"hello {name}")

    def post(self, name: str = "world") -> None:
        self.write({"name": name, "body": self.request.body.decode("utf-8", "replace")})


class AsyncHello(RequestHandler):
    async def get(self) -> None:
        await aio.sleep(0.01)
        value = await aio.run_in_executor(sum, [1, 2, 3])
        self.write({"async": True, "sum": value})


class Boom(RequestHandler):
    def get(self) -> None:
        raise ValueError("secret detail of the failure")


class AsyncBoom(RequestHandler):
    async def get(self) -> None:
        await aio.sleep(0)
        raise KeyError("async secret")


class Teapot(RequestHandler):
    def get(self) -> None:
        raise HTTPError(418, "logged only")


class Cookies(RequestHandler):
    def get(self) -> None:
        self.write({"cookies": self.request.cookies,
                    "signed": (self.get_signed_cookie("sid") or b"").decode()})

    def post(self) -> None:
        self.set_cookie("plain", "p1", httponly=True, samesite="Lax")
        self.set_signed_cookie("sid", self.get_argument("sid", "s-1"))
        self.write("set")


class Redirect(RequestHandler):
    def get(self) -> None:
        self.redirect(self.reverse_url("hello", "redirected"))


class Stream(RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        count = int(self.get_argument("n", "5"))
        delay = float(self.get_argument("delay", "0.005"))
        for i in range(count):
            self.write(f"chunk {i}\n")
            await self.flush()
            await aio.sleep(delay)


class Big(RequestHandler):
    """Streams ``n`` MiB with back-pressure (awaiting flush)."""

    async def get(self) -> None:
        block = b"x" * (1 << 16)
        for _ in range(int(self.get_argument("n", "8")) * 16):
            self.write(block)
            await self.flush()


class Form(RequestHandler):
    def post(self) -> None:
        files = {name: [{"filename": f.filename, "size": len(f.body),
                         "content_type": f.content_type} for f in items]
                 for name, items in self.request.files.items()}
        self.write({"args": self.request.body_arguments, "files": files})


class Channel:
    """Messages for long polling: every waiter of the current Event gets the next one."""

    def __init__(self) -> None:
        self.event = aio.Event()
        self.message = ""
        self.pollers: set[RequestHandler] = set()

    def publish(self, message: str) -> int:
        released = self.event.waiters
        self.message = message
        event, self.event = self.event, aio.Event()
        event.set()
        return released


CHANNEL = Channel()


class Poll(RequestHandler):
    cancel_on_disconnect = True

    async def get(self) -> None:
        CHANNEL.pollers.add(self)
        try:
            await CHANNEL.event.wait()
        finally:
            CHANNEL.pollers.discard(self)
        self.set_header("Content-Type", "text/plain")
        self.write(CHANNEL.message)


class Publish(RequestHandler):
    def post(self) -> None:
        self.write({"released": CHANNEL.publish(self.request.body.decode())})


class Waiters(RequestHandler):
    def get(self) -> None:
        self.write({"pollers": len(CHANNEL.pollers), "event": CHANNEL.event.waiters})


# -- a WSGI app to mount -----------------------------------------------------------------------

flask_app = Flask(__name__)


@flask_app.route("/")
def legacy_index():
    return "legacy index"


@flask_app.route("/env/<path:rest>")
def legacy_env(rest: str):
    return jsonify(script_name=request.environ["SCRIPT_NAME"],
                   path_info=request.environ["PATH_INFO"], rest=rest,
                   url=url_for("legacy_env", rest="x"))


# -- the applications --------------------------------------------------------------------------

def _static_dir() -> str:
    path = os.environ.get("NATIVE_STATIC_DIR")
    if path:
        return path
    path = tempfile.mkdtemp(prefix="native-static-")
    with open(os.path.join(path, "hello.txt"), "w") as f:
        f.write("hello static\n")
    return path


RULES = [
    (r"/mode", Mode),
    (r"/", Hello),
    (r"/hello/([^/]+)", Hello, {}, "hello"),
    (r"/async", AsyncHello),
    (r"/boom", Boom),
    (r"/async-boom", AsyncBoom),
    (r"/teapot", Teapot),
    (r"/cookies", Cookies),
    (r"/redirect", Redirect),
    (r"/stream", Stream),
    (r"/big", Big),
    (r"/form", Form),
    (r"/poll", Poll),
    (r"/publish", Publish),
    (r"/waiters", Waiters),
    mount("/legacy", flask_app),
]

STATIC_DIR = _static_dir()

application = Application(RULES, cookie_secret="test-secret", static_path=STATIC_DIR)
debug_application = Application(RULES, cookie_secret="test-secret", static_path=STATIC_DIR,
                                 debug=True)
