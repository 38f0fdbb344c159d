"""Native applications with WebSocket handlers, served by the WebSocket tests.

``GET /events`` answers what the handlers saw (opens, closes with their codes, write
overflows) as JSON, so a test can check the server's side over HTTP.
"""

from __future__ import annotations

from wsgiloop import aio
from wsgiloop.web import Application, RequestHandler, WebSocketClosedError, WebSocketHandler

events: list[dict] = []
clients: set[WebSocketHandler] = set()


class Echo(WebSocketHandler):
    """Echoes every message as it came (text as text, binary as binary); ``close:CODE:
    REASON`` closes with that code."""

    def open(self, *args):
        clients.add(self)
        events.append({"open": self.request.path, "args": list(args)})

    def on_message(self, message):
        if isinstance(message, str) and message.startswith("close:"):
            _, code, reason = message.split(":", 2)
            self.close(int(code), reason)
            return
        self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self):
        clients.discard(self)
        events.append({"close": self.request.path, "code": self.close_code,
                       "reason": self.close_reason})


class AsyncEcho(Echo):
    """Echoes after an await, awaiting the flush too."""

    async def open(self, *args):
        await aio.sleep(0.01)
        super().open(*args)

    async def on_message(self, message):
        await aio.sleep(0)
        await self.write_message(message, binary=isinstance(message, bytes))


class DeflateEcho(Echo):
    def get_compression_options(self):
        return {"compression_level": 6}


class Large(Echo):
    """Echo with room for big messages (the application's limit is 64 KiB)."""

    max_message_size = 16 << 20
    max_write_buffer = 32 << 20

    def get_compression_options(self):
        return {} if self.get_query_argument("deflate", None) else None


class Failing(Echo):
    def on_message(self, message):
        raise RuntimeError("boom")

    def on_pong(self, data):
        events.append({"pong": self.request.path})


class Flood(Echo):
    """On ``flood``: writes 64 KiB messages without waiting until the connection is
    closed for overflow (``flood-tiny``: 1-byte messages); on ``paced N``: writes N 64 KiB
    messages awaiting each."""

    async def on_message(self, message):
        chunk = b"x" * 65536
        if message in ("flood", "flood-tiny"):
            data = chunk if message == "flood" else b"x"
            written = 0
            try:
                while written < 2_000_000:
                    future = self.write_message(data, binary=True)
                    written += 1
                    if future.done() and future.exception() is not None:
                        break
            except WebSocketClosedError:
                pass
            events.append({message: written})
        elif message.startswith("paced"):
            count = int(message.split()[1])
            for _ in range(count):
                await self.write_message(chunk, binary=True)
            events.append({"paced": count})
            self.write_message("done")


class Pinging(Echo):
    @property
    def ping_interval(self):
        return 0.2

    @property
    def ping_timeout(self):
        return 0.6


class Protocols(Echo):
    def select_subprotocol(self, subprotocols):
        return "chat.v2" if "chat.v2" in subprotocols else None

    def open(self):
        self.write_message(f"protocol={self.selected_subprotocol}")


class SlowStart(Echo):
    """Echo whose handshake is answered after an await: what the client sends meanwhile
    waits on the HTTP side of the connection."""

    async def prepare(self):
        await aio.sleep(0.2)


class SlowAsyncStart(AsyncEcho):
    """AsyncEcho whose handshake is answered after an await, and whose ``open`` awaits:
    frames sent meanwhile wait for both."""

    async def prepare(self):
        await aio.sleep(0.2)


class Events(RequestHandler):
    def get(self):
        self.write({"events": events, "clients": len(clients)})

    def delete(self):
        events.clear()


class Memory(RequestHandler):
    """The worker's peak resident memory so far, in bytes."""

    def get(self):
        with open("/proc/self/status") as f:
            peak = next(line for line in f if line.startswith("VmHWM:"))
        self.write({"peak": int(peak.split()[1]) * 1024})


class Broadcast(RequestHandler):
    """``POST /broadcast`` with the message as the body: sent to every open client."""

    def post(self):
        text = self.request.body.decode()
        sent = 0
        for client in list(clients):
            try:
                client.write_message(text)
                sent += 1
            except WebSocketClosedError:
                pass
        self.write({"sent": sent})


application = Application([
    (r"/echo", Echo),
    (r"/echo/(\w+)", Echo),
    (r"/async", AsyncEcho),
    (r"/slow-start/(\w+)", SlowStart),
    (r"/slow-async/(\w+)", SlowAsyncStart),
    (r"/deflate", DeflateEcho),
    (r"/large", Large),
    (r"/failing", Failing),
    (r"/flood", Flood),
    (r"/ping", Pinging),
    (r"/protocols", Protocols),
    (r"/events", Events),
    (r"/memory", Memory),
    (r"/broadcast", Broadcast),
], websocket_max_message_size=1 << 16, websocket_max_write_buffer=1 << 20)


def wsgi_app(environ, start_response):
    """A plain WSGI application: an Upgrade request gets its normal answer."""
    body = f"plain {environ.get('HTTP_UPGRADE')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
