"""Native-mode benchmark: wsgiloop.web hello against Tornado's own native hello, and the
memory of one wsgiloop worker holding 10,000 idle long-poll connections.

    python bench/native.py [--duration 10] [--rounds 3] [--path /|/dynamic]
                           [--connections 10000] [--out FILE]

The servers run one process each, pinned to CPU 0, and wrk to CPU 1 (as in bench/run.py);
with 2 cores, client and server get one core each.  The hello runs alternate between the
two servers for ``--rounds`` rounds (a fresh server each run), so a slow patch of the
machine hits both; the report gives every round, the median of each server and the ratio
of the medians, with the lowest and highest per-round ratio beside it.  The long-poll part opens the
connections from this script (non-blocking sockets), sends one request on each, checks
the server reports them all waiting, reads the worker's RSS (VmRSS of the worker process),
then releases them with one request and counts the answers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/native.py`: make bench importable
    sys.path.insert(0, str(ROOT))

from bench.procstats import children, rss_kib  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start(cmd: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_listening(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def wrk(port: int, duration: int, path: str = "/") -> dict:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{duration}s",
                          "--latency", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": p50, "p99": p99,
            "errors": (errors.group(1) if errors else "0") + (
                f", socket errors: {sock_errors.group(1)}" if sock_errors else "")}


def get(port: int, path: str) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


def long_poll_memory(count: int) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 100:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is below {count + 100}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    proc = start([sys.executable, "-m", "wsgiloop", "bench.native_apps:application",
                  "--bind", f"127.0.0.1:{port}", "--backlog", "4096"], port)
    try:
        time.sleep(0.5)
        worker = children(proc.pid)[0]
        idle = rss_kib([worker]) / 1024
        selector = selectors.DefaultSelector()
        request = b"GET /wait HTTP/1.1\r\nHost: b\r\n\r\n"
        socks = []
        for i in range(count):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
            if i % 500 == 499:
                time.sleep(0.05)  # let the worker accept: the backlog is finite
        for s in socks:
            selector.register(s, selectors.EVENT_WRITE)
        pending = set(socks)
        while pending:
            for key, _ in selector.select(5):
                s = key.fileobj
                s.send(request)
                selector.unregister(s)
                pending.discard(s)
        deadline = time.monotonic() + 60
        waiting = 0
        while time.monotonic() < deadline:
            waiting = get(port, "/waiting")["waiting"]
            if waiting >= count:
                break
            time.sleep(0.2)
        held = rss_kib([worker]) / 1024
        for s in socks:
            selector.register(s, selectors.EVENT_READ)
        released = get(port, "/release")["released"]
        answered = 0
        deadline = time.monotonic() + 60
        while answered < count and time.monotonic() < deadline:
            for key, _ in selector.select(5):
                data = key.fileobj.recv(4096)
                if b"released" in data:
                    answered += 1
                    selector.unregister(key.fileobj)
        for s in socks:
            s.close()
        return {"connections": count, "waiting": waiting, "released": released,
                "answered": answered, "rss_idle_mib": round(idle, 1),
                "rss_held_mib": round(held, 1),
                "kib_per_connection": round((held - idle) * 1024 / max(count, 1), 1)}
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--path", default="/", choices=["/", "/dynamic"],
                        help="/: the constant hello; /dynamic: a body that changes with "
                             "every request (so does its ETag)")
    parser.add_argument("--connections", type=int, default=10_000,
                        help="idle long polls for the memory part (0: skip it)")
    parser.add_argument("--with-wsgi", action="store_true",
                        help="also run the WSGI hello (bench.apps:hello under python -m "
                             "wsgiloop) in every round: issue 11 wants native >= WSGI")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "native.md"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    servers = {
        "wsgiloop native": lambda port: [sys.executable, "-m", "wsgiloop",
                                         "bench.native_apps:application",
                                         "--bind", f"127.0.0.1:{port}"],
        "tornado native": lambda port: [sys.executable, "bench/tornado_native.py",
                                        "--port", str(port)],
    }
    if args.with_wsgi:
        servers["wsgiloop wsgi"] = lambda port: [sys.executable, "-m", "wsgiloop",
                                                 "bench.apps:hello", "--bind",
                                                 f"127.0.0.1:{port}"]
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for round_number in range(1, args.rounds + 1):
        for name, command in servers.items():
            port = free_port()
            proc = start(command(port), port)
            try:
                wrk(port, 1, args.path)  # warm-up
                result = wrk(port, args.duration, args.path)
            finally:
                stop(proc)
            runs[name].append(result)
            print(f"round {round_number}: {name} {result['rps']:,.0f} req/s", file=sys.stderr)
    ours, theirs = runs["wsgiloop native"], runs["tornado native"]
    ratios = [a["rps"] / b["rps"] for a, b in zip(ours, theirs, strict=True)]
    title = "Native hello" if args.path == "/" else "Native dynamic hello (GET /dynamic)"
    lines = [f"# {title} (keep-alive, 50 connections, 1 process each)", "",
             "| round | wsgiloop native | p50 | p99 | tornado native | p50 | p99 | ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for number, (a, b, ratio) in enumerate(zip(ours, theirs, ratios, strict=True), 1):
        errors = "" if a["errors"] == b["errors"] == "0" else \
            f" (errors: {a['errors']} / {b['errors']})"
        lines.append(f"| {number} | {a['rps']:,.0f} | {a['p50']} | {a['p99']} | "
                     f"{b['rps']:,.0f} | {b['p50']} | {b['p99']} | {ratio:.2f}x{errors} |")
    ours_median = statistics.median(r["rps"] for r in ours)
    theirs_median = statistics.median(r["rps"] for r in theirs)
    lines += ["", f"Median: wsgiloop native {ours_median:,.0f} req/s, tornado native "
              f"{theirs_median:,.0f} req/s: **{ours_median / theirs_median:.2f}x** "
              f"(per round {min(ratios):.2f}x to {max(ratios):.2f}x)."]
    if args.with_wsgi:
        wsgi = runs["wsgiloop wsgi"]
        wsgi_ratios = [a["rps"] / w["rps"] for a, w in zip(ours, wsgi, strict=True)]
        wsgi_median = statistics.median(r["rps"] for r in wsgi)
        lines += ["", "WSGI hello (`bench.apps:hello`) in the same rounds: "
                  + ", ".join(f"{w['rps']:,.0f}" for w in wsgi)
                  + f" req/s (p99 {', '.join(w['p99'] for w in wsgi)}); median "
                  f"{wsgi_median:,.0f}: native / WSGI **{ours_median / wsgi_median:.2f}x** "
                  f"(per round {min(wsgi_ratios):.2f}x to {max(wsgi_ratios):.2f}x)."]
    if args.connections <= 0:
        text = "\n".join(lines) + "\n"
        print(text)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        return 0
    memory = long_poll_memory(args.connections)
    lines += ["", f"# One wsgiloop worker holding {memory['connections']:,} idle long polls", "",
              "| waiting | released | answered | worker RSS idle | worker RSS holding | per "
              "connection |", "| ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| {memory['waiting']:,} | {memory['released']:,} | {memory['answered']:,} | "
              f"{memory['rss_idle_mib']} MiB | {memory['rss_held_mib']} MiB | "
              f"{memory['kib_per_connection']} KiB |"]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
