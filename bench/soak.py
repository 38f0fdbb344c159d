"""A bounded mixed soak: does a long run leave wsgiloop's workers where they started?

Runs ``python -m wsgiloop bench.apps:mixed -w 2`` and drives it with wrk in slices of
``--slice`` seconds until ``--requests`` requests (1,000,000 by default) have been
answered.  The wrk script cycles through a mix of requests: small GETs, POSTs with
a Content-Length body and with a chunked body, HTTP/1.0, a 64 KiB streamed response, a 404,
``Connection: close`` requests, malformed requests (answered 400, connection closed),
and, once every 10,000 requests, an application error (500).

Reported per worker: RSS and open fds after the warm-up slice and at the end, each read
after a few quiet seconds (wrk's connections closed); then the error-log lines by kind.
Targets (issue 9): RSS growth under 5 % after warm-up, no fd growth.

    apt-get install -y wrk
    python bench/soak.py                      # 1M requests, 2 workers (~1-2 minutes)
    python bench/soak.py --requests 200000 --connections 100
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/soak.py`: make bench importable
    sys.path.insert(0, str(ROOT))

from bench.procstats import fd_count, rss_kib  # noqa: E402

# Each entry is one raw request; wrk sends them in turn on each connection.
_MIX = [
    "GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n",
    "GET /hello?q=1&r=%20x HTTP/1.1\r\nHost: soak\r\nAccept: */*\r\nUser-Agent: soak\r\n\r\n",
    # (no HEAD: wrk, not knowing the request it sends, would wait for the body)
    "GET /hello HTTP/1.0\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n"
    "\r\n" + "p" * 1024,
    "POST /echo HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n"
    "10\r\n" + "c" * 16 + "\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    "GET /stream HTTP/1.1\r\nHost: soak\r\n\r\n",
    "GET /missing HTTP/1.1\r\nHost: soak\r\n\r\n",
    "GET /hello HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n",
    "GET /hello HTTP/1.1\r\nHost: soak\r\nFoo\r\n\r\n",            # no colon: 400
    "GET /hello HTTP/1.1\r\nHost: soak\r\nContent-Length: 5, 5\r\n\r\n",  # 400
    "GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n",
    "GET /hello HTTP/1.1\r\nHost: soak\r\nCookie: a=b; c=d\r\n\r\n",
]
_ERROR_EVERY = 10000
_SETTLE = 3.0  # seconds of quiet before RSS and fds are read (the linger after a 400 is 2 s)


def lua_script() -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace("\r", "\\r").replace(
            "\n", "\\n").replace('"', '\\"') + '"'

    entries = ",\n  ".join(quote(r) for r in _MIX)
    error = quote("GET /error HTTP/1.1\r\nHost: soak\r\n\r\n")
    return f"""
local mix = {{
  {entries}
}}
local n = 0
request = function()
  n = n + 1
  if n % {_ERROR_EVERY} == 0 then return {error} end
  return mix[(n % #mix) + 1]
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(log_text: str) -> list[int]:
    serving = re.findall(r"worker \d+ \(pid (\d+)\) serving", log_text)
    return [int(p) for p in serving if os.path.exists(f"/proc/{p}")]


def snapshot(pids: list[int]) -> dict[int, tuple[int, int]]:
    return {pid: (rss_kib([pid]), fd_count(pid)) for pid in pids}


def run_wrk(port: int, seconds: int, connections: int, lua: str) -> tuple[int, int, str]:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", lua, f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(m.group(1)) if m else 0, int(bad.group(1)) if bad else 0, out


def classify(line: str) -> str:
    line = re.sub(r"^\[[^]]*\] \[\d+\] ", "", line)
    line = re.sub(r"\d+", "N", line)
    return line[:100]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--slice", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=100_000,
                        help="requests before the baseline is taken")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("soak: wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="wsgiloop-soak-"))
    lua = workdir / "mix.lua"
    lua.write_text(lua_script())
    error_log = workdir / "error.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "wsgiloop", "bench.apps:mixed", "--bind", f"127.0.0.1:{port}",
         "-w", str(args.workers), "--error-log", str(error_log)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while len(worker_pids(error_log.read_text() if error_log.exists() else "")) < \
                args.workers:
            if time.monotonic() > deadline or server.poll() is not None:
                print("soak: the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        total = errors = 0
        baseline = None
        started = time.monotonic()
        while total < args.requests:
            done, bad, out = run_wrk(port, args.slice, args.connections, str(lua))
            total += done
            errors += bad
            if done == 0:
                print("soak: wrk answered nothing:\n" + out, file=sys.stderr)
                return 1
            pids = worker_pids(error_log.read_text())
            if baseline is None and total >= args.warmup:
                time.sleep(_SETTLE)  # connections closed, lingering closes done
                baseline = snapshot(pids)
                baseline_at = total
            print(f"soak: {total:>9,} requests, {time.monotonic() - started:5.0f} s, "
                  + ", ".join(f"pid {p}: {r / 1024:.1f} MiB {f} fds"
                              for p, (r, f) in snapshot(pids).items()), file=sys.stderr)
        time.sleep(_SETTLE)
        final = snapshot(worker_pids(error_log.read_text()))
    finally:
        server.terminate()
        server.wait(30)

    print(f"\n{total:,} requests ({errors:,} non-2xx/3xx by design: 404, 400, 500) with "
          f"{args.workers} workers, {args.connections} connections, "
          f"{time.monotonic() - started:.0f} s")
    print(f"baseline after {baseline_at:,} requests; RSS and fds per worker:\n")
    print("| worker pid | RSS after warm-up | RSS at end | growth | fds after warm-up | "
          "fds at end |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for pid, (rss, fds) in final.items():
        if pid not in baseline:
            print(f"| {pid} (respawned) | | {rss / 1024:.1f} MiB | | | {fds} |")
            continue
        rss0, fds0 = baseline[pid]
        print(f"| {pid} | {rss0 / 1024:.1f} MiB | {rss / 1024:.1f} MiB | "
              f"{(rss - rss0) / rss0 * 100:+.1f} % | {fds0} | {fds} |")
    lines = error_log.read_text().splitlines()
    kinds = collections.Counter(classify(line) for line in lines if line.startswith("["))
    print(f"\nerror log: {len(lines)} lines; by kind:")
    for kind, count in kinds.most_common(12):
        print(f"  {count:>7}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
