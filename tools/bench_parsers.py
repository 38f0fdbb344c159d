"""Parser-only micro-benchmark: microseconds per request for each parser backend.

Each request is fed whole to a parser that is reused (as a keep-alive connection reuses
its parser), its events are drained, and the next request is started.  The figure is the
best of ``--repeat`` runs of ``--number`` requests (the least disturbed by other load),
with the median of the runs beside it.

    python tools/bench_parsers.py                  # every request kind, both backends
    python tools/bench_parsers.py --number 50000 --repeat 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wsgiloop.http import NEED_DATA, HTTPLimits, RequestHead, parser_class  # noqa: E402

#: a browser-like GET: eight header fields
GET_8 = (b"GET /index.html?page=2 HTTP/1.1\r\n"
         b"Host: localhost:8000\r\n"
         b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "
         b"Firefox/120.0\r\n"
         b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
         b"Accept-Language: en-US,en;q=0.5\r\n"
         b"Accept-Encoding: gzip, deflate, br\r\n"
         b"Connection: keep-alive\r\n"
         b"Cookie: session=3f2a9c0d4e; theme=dark\r\n"
         b"Upgrade-Insecure-Requests: 1\r\n\r\n")
#: what wrk sends: one header field
GET_WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
#: a chunked upload: four 1 KiB chunks, one with an extension, and a trailer
_CHUNK = b"x" * 1024
POST_CHUNKED = (b"POST /upload HTTP/1.1\r\nHost: localhost:8000\r\n"
                b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n" + b"400\r\n" + _CHUNK + b"\r\n" + b"400;name=value\r\n" + _CHUNK
                + b"\r\n" + (b"400\r\n" + _CHUNK + b"\r\n") * 2 + b"0\r\nX-Sum: 1\r\n\r\n")
#: a form post with a Content-Length body
POST_LENGTH = (b"POST /form HTTP/1.1\r\nHost: localhost:8000\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n"
               b"\r\nname=wsgiloop&parser=llhttp")

REQUESTS = {"GET, 8 header fields": GET_8, "GET, wrk's (1 field)": GET_WRK,
            "POST, Content-Length 27": POST_LENGTH, "POST, chunked 4 x 1 KiB": POST_CHUNKED}


def one_request(cls: type, data: bytes):
    parser = cls(HTTPLimits())
    feed, next_event, start = parser.feed, parser.next_event, parser.start_next_request

    def run() -> None:
        feed(data)
        while (event := next_event()) is not NEED_DATA:
            if type(event) is not RequestHead and type(event) is not bytes:
                start()  # END_OF_MESSAGE

    run()
    assert parser.buffered == 0
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=20000, help="requests per run")
    ap.add_argument("--repeat", type=int, default=7, help="runs per figure")
    args = ap.parse_args()
    backends = ["python"]
    try:
        parser_class("httptools")
        backends.append("httptools")
    except ImportError:
        print("httptools is not installed: python only", file=sys.stderr)
    print("| request | bytes | " + " | ".join(f"{b} µs (median)" for b in backends) + " |")
    print("|---|---:|" + "---:|" * len(backends))
    for name, data in REQUESTS.items():
        cells = []
        for backend in backends:
            times = timeit.repeat(one_request(parser_class(backend), data),
                                  number=args.number, repeat=args.repeat)
            per = [t / args.number * 1e6 for t in times]
            cells.append(f"{min(per):.2f} ({statistics.median(per):.2f})")
        print(f"| {name} | {len(data)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
