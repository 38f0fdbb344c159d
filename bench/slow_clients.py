"""What slow clients cost wsgiloop: wrk latency and throughput with and without attackers.

    python bench/slow_clients.py                 # 2 workers, 1,000 tricklers, 100 readers
    python bench/slow_clients.py --duration 5 --tricklers 200 --slow-readers 20

Needs wrk (``apt-get install -y wrk``).  Steps:

1. start ``python -m wsgiloop bench.slow_clients:app --workers 2`` (``/`` is the 12-byte
   hello of bench/apps.py, ``/big`` a 64 MiB response yielded in 64 KiB chunks);
2. run wrk against ``/`` (after a short warm-up): p99 latency and requests/s;
3. start the attackers, on an asyncio loop in a thread of this process:

   * header tricklers: connections that send a request head a few bytes every ~1 s and
     never finish it (answered 408 at --header-timeout; they connect again);
   * slow readers: connections with a 4 KiB receive buffer that ask for ``/big`` and read
     1 byte a second (dropped at --send-timeout; they connect again);

4. run the same wrk again while they attack, stop them, and print both runs, the p99
   ratio, and the workers' RSS and open fds before, during and after.

The soft RLIMIT_NOFILE is raised to the hard limit (the attackers need an fd each, and
the server inherits the limit).

Measured (``cd /work/wt-conn && /work/main/.venv/bin/python bench/slow_clients.py``, the
defaults: wrk -t2 -c50 -d10s, 2 workers, --header-timeout 10, --send-timeout 30; a
2-core VM shared with other jobs, load average 3-8, so p99 is scheduling noise of
11-29 ms around a p50 under 1 ms).  Six runs, p99 quiet -> attacked (ratio), req/s
ratio: 13.7 -> 16.1 ms (1.18), 0.60; 23.9 -> 14.2 (0.59), 0.59; 17.7 -> 13.9 (0.79),
0.94; 15.1 -> 26.9 (1.78), 1.05; 11.8 -> 28.5 (2.42), 0.88; 21.0 -> 16.1 (0.77), 0.73
(p50 0.69 -> 1.00 ms).  Every run: 1,000 tricklers answered 408 and reconnected, all
1,100 attackers connected throughout, the workers at 29-30 MiB before, 30-40 MiB
during, back to 10 fds each 3 s after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/slow_clients.py`: make bench importable
    sys.path.insert(0, str(ROOT))

from bench.procstats import children, fd_count, rss_kib  # noqa: E402

HOST = "127.0.0.1"
BIG_CHUNK = 64 * 1024
BIG_COUNT = 1024  # 64 MiB
APT_WRK = "apt-get install -y wrk"


# -- the application served -------------------------------------------------------------------


def app(environ, start_response):
    """``/big``: 64 MiB in 64 KiB chunks; anything else: bench.apps.hello."""
    if environ.get("PATH_INFO") == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(BIG_CHUNK * BIG_COUNT))])
        return _big()
    from bench.apps import hello
    return hello(environ, start_response)


def _big():
    chunk = b"b" * BIG_CHUNK
    for _ in range(BIG_COUNT):
        yield chunk


# -- measuring ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the processes ``pids``."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_state(pids: list[int]) -> str:
    return ", ".join(f"pid {p}: {rss_kib([p]) / 1024:.1f} MiB, {fd_count(p)} fds" for p in pids)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(url: str, duration: int, connections: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
         "--timeout", "10s", url],
        capture_output=True, text=True, check=True).stdout
    p50 = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not p50 or not p99 or not rps:
        raise RuntimeError("could not read wrk's output:\n" + out)
    return {"p50_ms": float(p50.group(1)) * _UNITS[p50.group(2)],
            "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)],
            "rps": float(rps.group(1)),
            "errors": errors.group(1) if errors else "none",
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


# -- the attackers -----------------------------------------------------------------------------


class Attack:
    """Header tricklers and slow readers on an asyncio loop in a thread."""

    def __init__(self, port: int, tricklers: int, readers: int) -> None:
        self.port = port
        self.tricklers = tricklers
        self.readers = readers
        self.stats = {"trickler connects": 0, "408s": 0, "trickler closes": 0,
                      "reader connects": 0, "reader closes": 0, "reader bytes": 0,
                      "connect errors": 0}
        self.open_tricklers = 0
        self.open_readers = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = [asyncio.ensure_future(self._trickler(i)) for i in range(self.tricklers)]
        tasks += [asyncio.ensure_future(self._reader(i)) for i in range(self.readers)]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connect(self, rcvbuf: int | None = None) -> socket.socket | None:
        sock = socket.socket()
        sock.setblocking(False)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            await self._loop.sock_connect(sock, (HOST, self.port))
        except OSError:
            sock.close()
            self.stats["connect errors"] += 1
            await asyncio.sleep(1)
            return None
        return sock

    async def _trickler(self, index: int) -> None:
        await asyncio.sleep(index * 0.002)  # a ramp of ~2 s for 1,000
        head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Trickle-%d: %s\r\n" % (i, b"v" * 20) for i in range(200))
        while True:
            sock = await self._connect()
            if sock is None:
                continue
            self.stats["trickler connects"] += 1
            self.open_tricklers += 1
            try:
                for offset in range(0, len(head), 4):  # 4 bytes a second, never finished
                    await self._loop.sock_sendall(sock, head[offset:offset + 4])
                    try:
                        reply = await asyncio.wait_for(self._loop.sock_recv(sock, 4096), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    if reply.startswith(b"HTTP/1.1 408"):
                        self.stats["408s"] += 1
                    break
            except OSError:
                pass
            finally:
                self.stats["trickler closes"] += 1
                self.open_tricklers -= 1
                sock.close()

    async def _reader(self, index: int) -> None:
        await asyncio.sleep(index * 0.01)
        while True:
            sock = await self._connect(rcvbuf=4096)
            if sock is None:
                continue
            self.stats["reader connects"] += 1
            self.open_readers += 1
            try:
                await self._loop.sock_sendall(sock, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                while True:
                    await asyncio.sleep(1.0)  # 1 byte a second
                    data = await self._loop.sock_recv(sock, 1)
                    if not data:
                        break
                    self.stats["reader bytes"] += len(data)
            except OSError:
                pass
            finally:
                self.stats["reader closes"] += 1
                self.open_readers -= 1
                sock.close()


# -- the run -----------------------------------------------------------------------------------


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        print(f"warning: RLIMIT_NOFILE hard limit {hard} < {needed} needed", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tricklers", type=int, default=1000)
    parser.add_argument("--slow-readers", type=int, default=100)
    parser.add_argument("--ramp", type=float, default=5.0,
                        help="seconds the attackers run before the second wrk run")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra wsgiloop argument (repeatable), e.g. --server-arg="
                             "--send-timeout=10")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(f"wrk is not installed; install it with: {APT_WRK}", file=sys.stderr)
        return 2
    raise_fd_limit(args.tricklers + args.slow_readers + args.connections + 256)

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "wsgiloop", "bench.slow_clients:app", "--bind",
           f"{HOST}:{port}", "--workers", str(args.workers), "--log-level", "warning",
           *args.server_arg]
    print("server:", " ".join(cmd[1:]))
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while len(children(server.pid)) < args.workers or not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + (server.stderr.read()
                                                                    if server.stderr else ""))
            time.sleep(0.1)
        workers = children(server.pid)
        url = f"http://{HOST}:{port}/"
        run_wrk(url, 2, args.connections, args.threads)  # warm-up
        time.sleep(1)
        before = worker_state(workers)
        print(f"workers before:  {before}")
        cpu = cpu_seconds(workers)
        quiet = run_wrk(url, args.duration, args.connections, args.threads)
        quiet_cpu = cpu_seconds(workers) - cpu
        print(f"wrk, no attack:  p50 {quiet['p50_ms']:.2f} ms, p99 {quiet['p99_ms']:.2f} ms, "
              f"{quiet['rps']:.0f} req/s, socket errors: {quiet['errors']}, "
              f"non-2xx: {quiet['non2xx']}; workers used {quiet_cpu:.1f} CPU-s")

        attack = Attack(port, args.tricklers, args.slow_readers)
        attack.start()
        time.sleep(args.ramp)
        print(f"attack running:  {attack.open_tricklers} tricklers and {attack.open_readers}"
              f" slow readers connected")
        during_start = worker_state(workers)
        cpu, own = cpu_seconds(workers), own_cpu_seconds()
        attacked = run_wrk(url, args.duration, args.connections, args.threads)
        attacked_cpu, attack_cpu = cpu_seconds(workers) - cpu, own_cpu_seconds() - own
        during_end = worker_state(workers)
        print(f"attack at end:   {attack.open_tricklers} tricklers and {attack.open_readers}"
              f" slow readers connected")
        attack.stop()
        print(f"wrk, attacked:   p50 {attacked['p50_ms']:.2f} ms, p99 "
              f"{attacked['p99_ms']:.2f} ms, {attacked['rps']:.0f} req/s, socket errors: "
              f"{attacked['errors']}, non-2xx: {attacked['non2xx']}; workers used "
              f"{attacked_cpu:.1f} CPU-s, the attackers (this process) {attack_cpu:.1f}")
        print(f"workers during:  {during_start}  (before the attacked wrk run)")
        print(f"                 {during_end}  (after it)")
        time.sleep(3)  # the closed connections are released
        print(f"workers after:   {worker_state(workers)}  (3 s after the attack stopped)")
        print("attackers:       " + ", ".join(f"{k} {v}" for k, v in attack.stats.items()))
        ratio = attacked["p99_ms"] / quiet["p99_ms"] if quiet["p99_ms"] else float("inf")
        print(f"p99 ratio attacked/quiet: {ratio:.2f} (target: within 2x); "
              f"req/s ratio: {attacked['rps'] / quiet['rps']:.2f}")
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return 0


def _listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
