"""What metrics cost a worker: the per-response callback alone (timeit), and a whole
server's worker CPU time per request with each setting (wrk against bench/apps.py's
hello, one worker).

    python bench/metrics_cost.py --rounds 4 --duration 4

Settings compared: neither, ``--metrics-bind``, ``--statsd-host`` (to a UDP socket this
script holds and never reads) and both.  Rounds run the settings in turn, so that a
change in the machine's load hits each alike; the medians are printed with every run.
Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from wsgiloop.metrics import MetricsBlock, StatsdClient, response_recorder  # noqa: E402


class _Request:
    """The two attributes of a request the callback reads."""

    start_time = time.time()
    body_length = 0


def callback_cost(statsd_address: str, calls: int = 200_000) -> dict[str, float]:
    """Microseconds per call of the per-response callback, best of five runs."""
    cost = {}
    for name, block, statsd in (("metrics", True, False), ("statsd", False, True),
                                ("both", True, True)):
        record = response_recorder(MetricsBlock() if block else None,
                                   StatsdClient(statsd_address, "app") if statsd else None)
        assert record is not None
        request = _Request()
        runs = timeit.repeat("record(request, 200, 12)", number=calls, repeat=5,
                             globals={"record": record, "request": request})
        cost[name] = min(runs) / calls * 1e6
    return cost


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_cpu_per_request(extra: list[str], duration: float) -> float:
    """Microseconds of the worker's CPU time per request served under wrk."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "wsgiloop", "bench.apps:hello", "-w", "1",
                             "-b", f"127.0.0.1:{port}", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        time.sleep(0.5)  # the worker serves (the socket listens before it does)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        worker = int(children[0])
        before = _cpu_seconds(worker)
        out = subprocess.run(["wrk", "-t1", "-c50", f"-d{duration:g}s",
                              f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                             check=True).stdout
        spent = _cpu_seconds(worker) - before
        served = int(re.search(r"(\d+) requests in", out).group(1))
        return spent / served * 1e6
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="runs of each setting")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of wrk a run")
    args = parser.parse_args()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        statsd = f"127.0.0.1:{sink.getsockname()[1]}"
        print("per-response callback (us):", {k: round(v, 2) for k, v in
                                                callback_cost(statsd).items()})
        settings = {"neither": [], "metrics": ["--metrics-bind", None],
                    "statsd": ["--statsd-host", statsd],
                    "both": ["--metrics-bind", None, "--statsd-host", statsd]}
        runs: dict[str, list[float]] = {name: [] for name in settings}
        for _ in range(args.rounds):
            for name, extra in settings.items():
                flags = [f"127.0.0.1:{_free_port()}" if a is None else a for a in extra]
                runs[name].append(worker_cpu_per_request(flags, args.duration))
        print(f"load average {os.getloadavg()[0]:.1f}; worker CPU per request (us):")
        for name, values in runs.items():
            print(f"  {name:8} median {statistics.median(values):5.1f}  runs "
                  + " ".join(f"{v:.1f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
