"""Start a peer WSGI server that has no command line of its own worth using, in ONE
process, on the very same ``bench.apps`` callable as every other server.

    python bench/peers.py bjoern   bench.apps:hello --host 127.0.0.1 --port 8000
    python bench/peers.py meinheld bench.apps:hello --host 127.0.0.1 --port 8000
    python bench/peers.py fastwsgi bench.apps:hello --host 127.0.0.1 --port 8000

Each is started through the server's documented Python API (``bjoern.run``,
``meinheld.server.listen`` + ``run``, ``fastwsgi.run``) with its defaults, access
logging off where the server logs by default (meinheld).  Prints
``Listening at: http://HOST:PORT`` on stderr before serving.  granian, socketify and
uWSGI are started through their own command lines (see bench/catalogue.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys


def load_app(spec: str):
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr or "application")


def serve_bjoern(app, host: str, port: int) -> None:
    import bjoern

    bjoern.run(app, host, port)


def serve_meinheld(app, host: str, port: int) -> None:
    from meinheld import server

    server.set_access_logger(None)  # meinheld logs every request to stdout by default
    server.listen((host, port))
    server.run(app)


def serve_fastwsgi(app, host: str, port: int) -> None:
    import fastwsgi

    fastwsgi.run(wsgi_app=app, host=host, port=port)


SERVE = {"bjoern": serve_bjoern, "meinheld": serve_meinheld, "fastwsgi": serve_fastwsgi}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", choices=sorted(SERVE))
    parser.add_argument("app", metavar="MODULE:APP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:  # `python bench/peers.py`: make bench importable
        sys.path.insert(0, root)
    app = load_app(args.app)
    print(f"Listening at: http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    SERVE[args.server](app, args.host, args.port)


if __name__ == "__main__":
    main()
