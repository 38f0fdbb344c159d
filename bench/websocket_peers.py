"""The WebSocket benchmark's two servers, with the same handlers: ``/echo`` sends every
message back; ``/broadcast`` holds its clients and sends every message it gets to all
of them (the sender too).

    python -m wsgiloop bench.websocket_peers:application --bind 127.0.0.1:8000
    python bench/websocket_peers.py --port 8000          # Tornado's WebSocketHandler

``GET /count`` answers how many broadcast clients are open (for the benchmark to wait on).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from wsgiloop.web import Application, RequestHandler, WebSocketClosedError, WebSocketHandler

clients: set = set()


class Echo(WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class Broadcast(WebSocketHandler):
    def open(self):
        clients.add(self)

    def on_message(self, message):
        for client in list(clients):
            try:
                client.write_message(message)
            except WebSocketClosedError:
                clients.discard(client)

    def on_close(self):
        clients.discard(self)


class Count(RequestHandler):
    def get(self):
        self.write({"clients": len(clients)})


application = Application([(r"/echo", Echo), (r"/broadcast", Broadcast),
                           (r"/count", Count)])


def tornado_main(port: int) -> None:
    import tornado.web
    import tornado.websocket

    class TornadoEcho(tornado.websocket.WebSocketHandler):
        def on_message(self, message):
            self.write_message(message, binary=isinstance(message, bytes))

    class TornadoBroadcast(tornado.websocket.WebSocketHandler):
        def open(self):
            clients.add(self)

        def on_message(self, message):
            for client in list(clients):
                try:
                    client.write_message(message)
                except tornado.websocket.WebSocketClosedError:
                    clients.discard(client)

        def on_close(self):
            clients.discard(self)

    class TornadoCount(tornado.web.RequestHandler):
        def get(self):
            self.write({"clients": len(clients)})

    async def serve() -> None:
        app = tornado.web.Application([(r"/echo", TornadoEcho),
                                       (r"/broadcast", TornadoBroadcast),
                                       (r"/count", TornadoCount)])
        app.listen(port, "127.0.0.1", backlog=4096)
        print(f"Listening at: http://127.0.0.1:{port}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    tornado_main(parser.parse_args().port)
