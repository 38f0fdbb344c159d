"""Tornado servers for the benchmark, always one process on one IOLoop.

    python bench/tornado_native.py --port 8000
        Tornado's native ``RequestHandler`` hello (the reference line).
    python bench/tornado_native.py --port 8000 --wsgi bench.apps:hello
        The same WSGI app the other servers run, hosted in ``tornado.wsgi.WSGIContainer``
        (synchronously on the IOLoop thread: no executor).

Prints ``Listening at: http://HOST:PORT`` on stderr once the socket is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys

import tornado.httpserver
import tornado.web
import tornado.wsgi

HELLO_BODY = b"Hello World!"


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write(HELLO_BODY)


class DynamicHandler(tornado.web.RequestHandler):
    """The same as bench.native_apps.Dynamic: a body that changes with every request."""

    count = 0

    def get(self) -> None:
        DynamicHandler.count += 1
        self.set_header("Content-Type", "text/plain")
        self.write(b"Hello visitor %d" % DynamicHandler.count)


def load_app(spec: str):
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr or "application")


async def serve(host: str, port: int, wsgi: str | None) -> None:
    if wsgi:
        target = tornado.wsgi.WSGIContainer(load_app(wsgi))
    else:
        target = tornado.web.Application([(r"/", HelloHandler), (r"/dynamic", DynamicHandler)])
    server = tornado.httpserver.HTTPServer(target)
    server.listen(port, host)
    print(f"Listening at: http://{host}:{port}", file=sys.stderr, flush=True)
    await serve_until_signalled(server)


async def serve_until_signalled(server: tornado.httpserver.HTTPServer) -> None:
    """Let ``server`` serve until SIGTERM or SIGINT, then stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--wsgi", metavar="MODULE:APP",
                        help="serve this WSGI app through WSGIContainer instead")
    args = parser.parse_args(argv)
    # Run from the repository root: make "bench" importable however we were started.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    asyncio.run(serve(args.host, args.port, args.wsgi))


if __name__ == "__main__":
    main()
