"""The parser backends compared: microseconds per request, parser alone or end to end.

Parser alone (the default): each request is fed whole to a parser that is reused (as a
keep-alive connection reuses its parser), its events are drained, and the next request
is started.  The figure is the best of ``--repeat`` runs of ``--number`` requests (the
least disturbed by other load), with the median of the runs beside it.

End to end (``--wrk ROUNDS``): ``python -m wsgiloop bench.apps:hello --parser NAME`` on
CPU 0 and ``wrk -t1 -c50 -d5s`` on CPU 1 (taskset), after a one-second warm-up; each round
runs both backends, in alternating order.  Per run: requests/s, and the server's CPU time
per request (user + system of the server's processes, from /proc), which shared-machine
noise disturbs less than the rate.  Then the medians.  ``--headers 8`` sends a browser's
eight fields instead of wrk's one.

    python tools/bench_parsers.py                  # every request kind, both backends
    python tools/bench_parsers.py --number 50000 --repeat 9
    python tools/bench_parsers.py --wrk 4          # 4 runs per backend (needs wrk)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import timeit
import urllib.request
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


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk_run(backend: str, port: int, headers: list[str], seconds: int = 5) -> tuple:
    """(requests/s, server CPU µs per request, 1-minute load before) for one run."""
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "wsgiloop", "bench.apps:hello",
         "--parser", backend, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c50"]
        for header in headers:
            wrk += ["-H", header]
        subprocess.run(wrk + ["-d1s", url], capture_output=True, check=True)
        load = os.getloadavg()[0]
        before = _server_cpu(server.pid)
        out = subprocess.run(wrk + [f"-d{seconds}s", url], capture_output=True, text=True,
                             check=True).stdout
        cpu = _server_cpu(server.pid) - before
    finally:
        server.terminate()
        server.wait()
    count = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, cpu / count * 1e6, load


BROWSER_FIELDS = [line.decode() for line in GET_8.split(b"\r\n")[2:-2]]


def wrk_bench(backends: list[str], rounds: int, fields: int) -> None:
    headers = BROWSER_FIELDS if fields == 8 else []
    runs: dict[str, list] = {b: [] for b in backends}
    port = 18900 + os.getpid() % 1000
    for index in range(rounds):
        for backend in backends if index % 2 == 0 else backends[::-1]:
            port += 1
            rate, cpu, load = wrk_run(backend, port, headers)
            runs[backend].append((rate, cpu))
            print(f"round {index + 1} {backend:9} {rate:8.0f} req/s {cpu:6.1f} µs CPU/req "
                  f"(load {load:.2f})", flush=True)
    for backend, values in runs.items():
        print(f"{backend:9} median {statistics.median(v[0] for v in values):8.0f} req/s "
              f"{statistics.median(v[1] for v in values):6.1f} µs CPU/req "
              f"({len(values)} runs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=20000, help="requests per run")
    ap.add_argument("--repeat", type=int, default=7, help="runs per figure")
    ap.add_argument("--wrk", type=int, metavar="ROUNDS", default=0,
                    help="end to end instead: this many wrk runs per backend")
    ap.add_argument("--headers", type=int, choices=(1, 8), default=1,
                    help="with --wrk: header fields per request")
    args = ap.parse_args()
    backends = ["python"]
    try:
        parser_class("httptools")
        backends.append("httptools")
    except ImportError:
        print("httptools is not installed: python only", file=sys.stderr)
    if args.wrk:
        wrk_bench(backends, args.wrk, args.headers)
        return
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
