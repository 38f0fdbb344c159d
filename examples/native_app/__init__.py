"""A live message board served natively by wsgiloop -- in the spirit of Tornado's chat demo.

    wsgiloop examples.native_app:application        # then open http://127.0.0.1:8000/

* ``GET /`` -- the page (static HTML and JavaScript from ``static/``);
* ``GET /api/messages`` -- the last messages as JSON; ``POST /api/messages`` -- post one
  (JSON ``{"author": ..., "text": ...}`` or a form);
* ``GET /api/poll?cursor=N`` -- long polling: answers at once if messages newer than N
  exist, else waits (up to 30 s) for the next post;
* ``GET /api/events`` -- the same as server-sent events, a stream that stays open;
* ``/api/live`` -- a live channel over WebSockets (page: ``/static/live.html``): the last
  messages on opening, then every new one as it is posted; a JSON message
  ``{"author": ..., "text": ...}`` sent on it posts one;
* ``/legacy/...`` -- a Flask app mounted under a prefix (``SCRIPT_NAME=/legacy``).

One worker holds every waiting client on its event loop; with several workers each keeps
its own board (state lives in the process), so run this example with one worker.
"""

from __future__ import annotations

import json
import os
import time

from flask import Flask, request

from wsgiloop import aio
from wsgiloop.web import (
    Application,
    HTTPError,
    RequestHandler,
    WebSocketClosedError,
    WebSocketHandler,
    mount,
)


class Board:
    """The messages, the clients waiting for the next one, and the open WebSockets."""

    def __init__(self, keep: int = 200) -> None:
        self.messages: list[dict] = []
        self.keep = keep
        self.next_id = 1
        self.changed = aio.Event()
        self.sockets: set[WebSocketHandler] = set()

    def post(self, author: str, text: str) -> dict:
        message = {"id": self.next_id, "author": author, "text": text, "time": time.time()}
        self.next_id += 1
        self.messages = (self.messages + [message])[-self.keep:]
        changed, self.changed = self.changed, aio.Event()
        changed.set()  # wakes every waiting poll and event stream at once
        for client in list(self.sockets):
            try:
                client.write_message({"messages": [message]})
            except WebSocketClosedError:
                self.sockets.discard(client)
        return message

    def since(self, cursor: int) -> list[dict]:
        return [m for m in self.messages if m["id"] > cursor]

    @property
    def waiting(self) -> int:
        return self.changed.waiters


board = Board()


class Page(RequestHandler):
    def get(self) -> None:
        self.redirect("/static/index.html")


class Messages(RequestHandler):
    def get(self) -> None:
        self.write({"messages": board.messages[-50:], "waiting": board.waiting,
                    "sockets": len(board.sockets)})

    def post(self) -> None:
        if self.request.headers.get("Content-Type", "").startswith("application/json"):
            data = self.get_json() or {}
        else:
            data = {"author": self.get_body_argument("author", ""),
                    "text": self.get_body_argument("text", "")}
        author = str(data.get("author") or "anonymous").strip()[:40]
        text = str(data.get("text") or "").strip()[:500]
        if not text:
            raise HTTPError(400, reason="a message needs text")
        self.set_status(201)
        self.write(board.post(author, text))


class Poll(RequestHandler):
    cancel_on_disconnect = True  # a client that leaves stops waiting (and being counted)

    async def get(self) -> None:
        try:
            cursor = int(self.get_argument("cursor", "0"))
        except ValueError:
            raise HTTPError(400, reason="cursor must be a number")
        new = board.since(cursor)
        if not new:
            changed = board.changed
            try:
                await aio.with_timeout(changed.wait(), 30)
            except TimeoutError:
                pass
            if self.closed:
                return
            new = board.since(cursor)
        self.write({"messages": new})


class Events(RequestHandler):
    cancel_on_disconnect = True

    async def get(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        cursor = int(self.get_argument("cursor", "0") or 0)
        self.write(": connected\n\n")
        await self.flush()
        while not self.closed:
            for message in board.since(cursor):
                self.write(f"id: {message['id']}\ndata: {json.dumps(message)}\n\n")
                cursor = message["id"]
            await self.flush()
            try:
                await aio.with_timeout(board.changed.wait(), 15)
            except TimeoutError:
                self.write(": keep-alive\n\n")  # keeps proxies from closing the stream


class Live(WebSocketHandler):
    """The board over a WebSocket (same-origin pages only: the default check_origin)."""

    def open(self) -> None:
        board.sockets.add(self)
        self.write_message({"messages": board.messages[-50:]})

    def on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            author = str(data.get("author") or "anonymous").strip()[:40]
            text = str(data.get("text") or "").strip()[:500]
        except (ValueError, AttributeError):
            self.close(1003, "expected a JSON object")
            return
        if text:
            board.post(author, text)

    def on_close(self) -> None:
        board.sockets.discard(self)


legacy = Flask(__name__)


@legacy.route("/")
def legacy_index() -> dict:
    return {"app": "flask", "script_name": request.script_root, "path": request.path,
            "messages": len(board.messages)}


application = Application([
    (r"/", Page),
    (r"/api/messages", Messages),
    (r"/api/poll", Poll),
    (r"/api/events", Events),
    (r"/api/live", Live),
    mount("/legacy", legacy),
], static_path=os.path.join(os.path.dirname(__file__), "static"))
