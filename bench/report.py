"""The benchmark's report: what one run measured (:class:`Run`), the median of repeated
runs, and the markdown that bench/run.py prints and writes -- the machine, one table per
scenario (a wider one with per-worker counts for multi-worker scenarios), issue 11's
targets and the commands that were run -- and the same results as JSON (bench/chart.py
draws them).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from bench.catalogue import (
    BASELINE,
    HOST,
    ROOT,
    SERVERS,
    TARGETS,
    Scenario,
    Server,
    multi_cpus,
    not_applicable,
)


@dataclass
class Run:
    scenario: str
    server: str
    rps: float | None = None
    p50_us: float | None = None
    p90_us: float | None = None
    p99_us: float | None = None
    max_us: float | None = None
    requests: int = 0
    bytes: int = 0
    non2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    rss_idle_kib: int | None = None
    rss_end_kib: int | None = None
    rss_peak_kib: int | None = None
    rss_worker_end_kib: int | None = None  # the biggest single process of the tree, at end
    conns_end: tuple[int, int] | None = None  # (established, accept queue)
    # workers > 1: {worker pid: requests it logged during the measured run}, and
    # {worker pid: connections it held at the end}
    worker_requests: dict[int, int] | None = None
    worker_conns: dict[int, int] | None = None
    problems: list[str] = field(default_factory=list)  # these flag the run
    notes: list[str] = field(default_factory=list)  # worth knowing, not an error
    disturbed: bool = False  # someone else's wrk, or other load, ran at the same time
    other_cpu: float | None = None  # CPUs used by other processes during the measurement
    skipped: str | None = None
    rps_runs: list[float] = field(default_factory=list)  # --repeat: every run's Req/s

    @property
    def flagged(self) -> bool:
        return bool(self.problems)


def median_run(runs: list[Run]) -> Run:
    """One Run standing for repeated runs of one (scenario, server): the median of every
    figure (each on its own), all the problems and notes, every run's Req/s in
    ``rps_runs``."""
    if len(runs) == 1:
        run = runs[0]
        run.rps_runs = [run.rps] if run.rps is not None else []
        return run

    def med(name: str):
        values = [getattr(r, name) for r in runs if getattr(r, name) is not None]
        return statistics.median(values) if values else None

    first = runs[0]
    out = Run(first.scenario, first.server)
    for name in ("rps", "p50_us", "p90_us", "p99_us", "max_us", "rss_idle_kib",
                 "rss_end_kib", "rss_peak_kib", "rss_worker_end_kib", "other_cpu"):
        setattr(out, name, med(name))
    out.requests = sum(r.requests for r in runs)
    out.bytes = sum(r.bytes for r in runs)
    out.non2xx = sum(r.non2xx for r in runs)
    for r in runs:
        for k, v in r.socket_errors.items():
            out.socket_errors[k] = out.socket_errors.get(k, 0) + v
        for i, text in enumerate(r.problems + r.notes):
            target = out.problems if i < len(r.problems) else out.notes
            tagged = f"run {runs.index(r) + 1}: {text}"
            target.append(tagged)
    ends = [r.conns_end for r in runs if r.conns_end is not None]
    if ends:
        out.conns_end = (int(statistics.median(e[0] for e in ends)),
                         int(statistics.median(e[1] for e in ends)))
    out.worker_requests = first.worker_requests
    out.worker_conns = first.worker_conns
    out.disturbed = any(r.disturbed for r in runs)
    out.rps_runs = [r.rps for r in runs if r.rps is not None]
    return out


def best_peer(runs: list[Run]) -> Run | None:
    """The fastest WSGI peer in one scenario's runs: not wsgiloop, not a reference line
    (Tornado's native handler, the C ceiling), not skipped or without responses."""
    peers = [r for r in runs if r.rps and not r.skipped and r.server in SERVERS
             and SERVERS[r.server].package != "wsgiloop" and not SERVERS[r.server].reference]
    return max(peers, key=lambda r: r.rps, default=None)


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        if dist == "wsgiloop":  # not installed, run from the source tree
            init = ROOT / "wsgiloop" / "__init__.py"
            m = re.search(r'__version__\s*=\s*"([^"]+)"', init.read_text()) if init.exists() \
                else None
            if m:
                return m.group(1) + " (source tree)"
        return "not installed"


VERSIONED = ("wsgiloop", "gunicorn", "waitress", "tornado", "granian", "bjoern", "meinheld",
             "greenlet", "fastwsgi", "socketify", "pyuwsgi", "flask")


def gcc_version() -> str:
    try:
        out = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "gcc not installed"
    return out.splitlines()[0] if out else "?"


def machine_info(args) -> list[tuple[str, str]]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
        wrk = wrk.splitlines()[0].split(" Copyright")[0].strip() if wrk else "?"
    except OSError:
        wrk = "?"
    versions = ", ".join(f"{d} {version_of(d)}" for d in VERSIONED)
    return [
        ("nproc", str(len(os.sched_getaffinity(0)))),
        ("CPU", model),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Servers", versions),
        ("C ceiling", f"bench/ceiling/hello.c, {gcc_version()}, -O2"),
        ("Client", wrk),
        ("Load average at start", args.loadavg_at_start),
        ("Pinning", f"server on CPU {args.server_cpu}, wrk (1 thread) on CPU {args.client_cpu}"
                    + ("; multi-worker scenarios: the server's processes on CPUs "
                       f"{multi_cpus(args)} (shared with wrk)"
                       if any(sc.workers > 1 for sc in args.scenarios) else "")),
        ("Runs", f"{args.duration}s each after a {args.warmup}s warm-up; fresh server per run; "
                 f"wrk --timeout {args.wrk_timeout}"
                 + (f"; {args.repeat} runs per server taken in turns, the median shown"
                    if getattr(args, "repeat", 1) > 1 else "")),
    ]


def fmt_latency(us: float | None) -> str:
    if us is None:
        return "—"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.0f} µs"


def fmt_mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f}"


def fmt_runs(r: Run) -> str:
    return " / ".join(f"{v:,.0f}" for v in r.rps_runs) if len(r.rps_runs) > 1 else ""


def scenario_table(scenario: Scenario, runs: list[Run]) -> list[str]:
    base = next((r for r in runs if r.server == BASELINE and r.rps), None)
    best = best_peer(runs)
    repeated = any(len(r.rps_runs) > 1 for r in runs)
    head = ["Server", "Req/s"] + (["Runs"] if repeated else []) + [
        f"vs best peer ({best.server})" if best else "vs best peer", f"vs {BASELINE}",
        "p50", "p99", "Non-2xx", "Socket errors", "RSS MiB idle → end"]
    if scenario.report_connections:
        head += ["Worker RSS MiB", "Open conns (un-accepted)"]
    head.append("Status")
    rows = [head, ["---", "---:"] + (["---:"] if repeated else [])
            + ["---:", "---:", "---:", "---:", "---:", "---", "---:"]
            + (["---:", "---:"] if scenario.report_connections else []) + ["---"]]
    for r in runs:
        if r.skipped:
            rows.append([r.server, "n/a"] + [""] * (len(head) - 3) + [f"n/a: {r.skipped}"])
            continue
        ratio = f"{r.rps / base.rps:.2f}×" if base and r.rps is not None else "—"
        vs_best = f"{r.rps / best.rps:.2f}×" if best and r.rps is not None else "—"
        sock = ", ".join(f"{k} {v}" for k, v in r.socket_errors.items()) or "0"
        rss = (f"{fmt_mib(r.rss_idle_kib)} → {fmt_mib(r.rss_end_kib)}"
               if r.rss_end_kib is not None else fmt_mib(r.rss_idle_kib))
        row = [r.server, f"{r.rps:,.0f}" if r.rps is not None else "—"]
        if repeated:
            row.append(fmt_runs(r))
        row += [vs_best, ratio, fmt_latency(r.p50_us), fmt_latency(r.p99_us),
                str(r.non2xx) if r.rps is not None else "—",
                sock if r.rps is not None else "—", rss]
        if scenario.report_connections:
            row.append(fmt_mib(r.rss_worker_end_kib))
            row.append(f"{r.conns_end[0]} ({r.conns_end[1]})" if r.conns_end else "—")
        status = "**FLAGGED**: " + "; ".join(r.problems) if r.flagged else "ok"
        if r.notes:
            status += " (" + "; ".join(r.notes) + ")"
        row.append(status)
        rows.append(row)
    return ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def spread(counts: dict[int, int]) -> tuple[float, float]:
    """(max/min ratio, busiest worker's share) of per-worker request counts."""
    total = sum(counts.values())
    hi, lo = max(counts.values()), min(counts.values())
    return (hi / lo if lo else float("inf")), (hi / total if total else 0.0)


def fmt_spread(run: Run) -> str:
    counts = run.worker_requests or {}
    if not counts:
        return "—"
    parts = []
    for pid in sorted(counts):
        conns = (run.worker_conns or {}).get(pid)
        parts.append(f"{counts[pid]:,}" + (f" ({conns} conns)" if conns is not None else ""))
    ratio, share = spread(counts)
    ratio_s = "∞" if ratio == float("inf") else f"{ratio:.2f}"
    return (" / ".join(parts) + f"; max/min {ratio_s}, busiest {share:.1%}"
            f" (even: {1 / len(counts):.1%})")


def multi_worker_caveat(args, scenario: Scenario) -> str:
    cpus = multi_cpus(args)
    ncpu = len(os.sched_getaffinity(0))
    text = (f"{scenario.workers} worker processes per server, NOT pinned to one core: "
            f"they run on CPUs {cpus} together with wrk (pinned to CPU {args.client_cpu})")
    if len(cpus.split(",")) < scenario.workers or ncpu <= scenario.workers:
        text += (f"; with {ncpu} cores and the load generator on the same cores this "
                 "measures contention, not scaling")
    return text + "."


def multi_table(scenario: Scenario, runs: list[Run]) -> list[str]:
    base = next((r for r in runs if r.server == BASELINE and r.rps), None)
    head = ["Server", "Req/s", f"vs {BASELINE}", "p50", "p99", "Non-2xx", "Socket errors",
            "RSS MiB idle → end", "Requests per worker (open conns at end)", "Max/min",
            "Busiest worker", "Status"]
    rows = [head, ["---", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---",
                   "---:", "---:", "---"]]
    for r in runs:
        if r.skipped:
            rows.append([r.server, "n/a"] + [""] * 9 + [f"n/a: {r.skipped}"])
            continue
        ratio = f"{r.rps / base.rps:.2f}×" if base and r.rps is not None else "—"
        sock = ", ".join(f"{k} {v}" for k, v in r.socket_errors.items()) or "0"
        rss = (f"{fmt_mib(r.rss_idle_kib)} → {fmt_mib(r.rss_end_kib)}"
               if r.rss_end_kib is not None else fmt_mib(r.rss_idle_kib))
        per_worker = mm = busiest = "—"
        if r.worker_requests:
            conns = r.worker_conns or {}
            per_worker = " / ".join(
                f"{r.worker_requests[pid]:,}"
                + (f" ({conns[pid]})" if pid in conns else "")
                for pid in sorted(r.worker_requests))
            ratio_mm, share = spread(r.worker_requests)
            mm = "∞" if ratio_mm == float("inf") else f"{ratio_mm:.2f}"
            busiest = f"{share:.1%}"
        status = "**FLAGGED**: " + "; ".join(r.problems) if r.flagged else "ok"
        if r.notes:
            status += " (" + "; ".join(r.notes) + ")"
        rows.append([r.server, f"{r.rps:,.0f}" if r.rps is not None else "—", ratio,
                     fmt_latency(r.p50_us), fmt_latency(r.p99_us),
                     str(r.non2xx) if r.rps is not None else "—",
                     sock if r.rps is not None else "—", rss, per_worker, mm, busiest,
                     status])
    return ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def render(args, scenarios: list[Scenario], servers: list[Server], runs: list[Run],
           started: datetime.datetime, elapsed: float) -> str:
    out = ["# wsgiloop benchmark", "",
           f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s in all: "
           f"`python bench/run.py {' '.join(sys.argv[1:])}`".rstrip(), ""]
    out += ["| Machine | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in machine_info(args)]
    out.append("")
    ncpu = len(os.sched_getaffinity(0))
    if args.server_cpu == args.client_cpu:
        out.append("> Note: server and wrk share one CPU, so the numbers are not comparable "
                   "with pinned runs.")
    elif ncpu == 2:
        out.append("> Note: this machine has 2 cores: the client (wrk) and the server each "
                   "get one core, and nothing else is left for either.")
    else:
        out.append(f"> Note: {ncpu} cores; the server gets one core and wrk another.")
    if getattr(args, "interrupted", False):
        out += ["> **Interrupted**: only the runs that finished are shown.", ""]
    out += ["> Every server runs one worker process (except in multi-worker scenarios such "
            "as `hello-2w`, see there). `vs best peer` is Req/s divided by the fastest WSGI "
            "peer's (not wsgiloop, the C ceiling or Tornado's native handler) and "
            "`vs gunicorn-sync` by gunicorn-sync's, in the same scenario of this run. "
            "p50/p99 come from "
            "wrk's latency histogram (responses slower than the wrk timeout are counted as "
            "`timeout` socket errors instead). A row with non-2xx answers, socket errors, "
            "a failed start or a wrong answer to the check request is **FLAGGED**.", ""]
    order = {s.name: i for i, s in enumerate(servers)}
    runs = sorted(runs, key=lambda r: order.get(r.server, len(order)))
    out += targets_section(runs)
    for sc in scenarios:
        if sc.workers > 1:
            sc_runs = [r for r in runs if r.scenario == sc.name]
            if not any(not r.skipped for r in sc_runs):
                continue
            out += [f"## {sc.name}", "", sc.title + ".", ""]
            out += [f"> **Not pinned**: {multi_worker_caveat(args, sc)} Every server here "
                    "writes one access-log line per request (its pid, `%(p)s`), so Req/s is "
                    "not comparable with the single-worker tables. Requests per worker are "
                    "the lines each worker logged during the measured run (pid order), in "
                    "brackets the connections it held shortly before wrk stopped; Max/min "
                    "is the busiest worker's count over the idlest's, Busiest worker its "
                    f"share of all requests (even: {1 / sc.workers:.0%}).", ""]
            out += multi_table(sc, sc_runs)
            out.append("")
            continue
        sc_runs = [r for r in runs if r.scenario == sc.name]
        if not any(not r.skipped for r in sc_runs):
            continue
        out += [f"## {sc.name}", "", sc.title + ".", ""]
        out += scenario_table(sc, sc_runs)
        out.append("")
    out += ["## Commands", "", "Each server command is prefixed with "
            f"`taskset -c {args.server_cpu}` and runs with the repository root as cwd "
            "(`{port}` is a free port, `{app}` e.g. `bench.apps:hello`):", ""]
    show = show_argv

    for s in servers:
        if not s.multi_only:
            out.append(f"- **{s.name}**: `{show(s.argv)}`" + (f" — {s.note}" if s.note else ""))
    for sc in scenarios:
        if sc.workers == 1:
            continue
        out += ["", f"In `{sc.name}` the servers run as below, prefixed with "
                f"`taskset -c {multi_cpus(args)}` (`PIDLOG` is a temporary file of `<pid>` "
                "lines):", ""]
        for s in servers:
            if s.hello_only and sc.app != "hello":
                continue
            why_not = not_applicable(s, sc)
            if s.multi_argv is not None:
                line = f"- **{s.name}**: `{show(s.multi_argv, sc.workers)}`"
                out.append(line + (f" — n/a: {why_not}" if why_not else ""))
            else:
                out.append(f"- **{s.name}**: n/a — {why_not}")
        out.append("")
    out.append(f"- **wrk**: `taskset -c {args.client_cpu} wrk -t1 -c50 -d{args.duration}s "
               f"--timeout={args.wrk_timeout} --latency -s SCENARIO.lua "
               f"http://{HOST}:PORT/` (-c20 for stream-256k, -c1000 for hello-1000c)")
    out.append("")
    return "\n".join(out)


def show_argv(argv: tuple[str, ...], workers: int = 1) -> str:
    words = [f"'{a}'" if (" " in a or "%" in a) else a for a in argv]
    cmd = (" ".join(words).replace("{python}", "python").replace("{bench}", "bench")
           .replace("{ceiling}", "bench/ceiling/build/hello").replace("{root}", "."))
    return (cmd.replace("{host}", HOST).replace("{workers}", str(workers))
            .replace("{pidlog}", "PIDLOG"))


def target_results(runs: list[Run]) -> list[dict]:
    """Issue 11's targets against this run: one dict per target whose scenario ran."""
    found = []
    for t in TARGETS:
        ours = next((r for r in runs if r.scenario == t.scenario and r.server == "wsgiloop"
                     and not r.skipped), None)
        peer = next((r for r in runs if r.scenario == t.scenario and r.server == t.peer
                     and not r.skipped), None)
        if ours is None and peer is None:
            continue
        item = {"scenario": t.scenario, "target": t.text, "peer": t.peer,
                "wsgiloop_rps": ours.rps if ours else None,
                "peer_rps": peer.rps if peer else None, "ratio": None, "met": None,
                "why": []}
        if ours and peer and ours.rps and peer.rps:
            item["ratio"] = ours.rps / peer.rps
            met = item["ratio"] >= t.factor
            if not met:
                item["why"].append(f"{item['ratio']:.2f}× < {t.factor:g}×")
            if t.max_p99_ms is not None:
                p99 = (ours.p99_us or 0) / 1000
                item["wsgiloop_p99_ms"] = p99
                if ours.p99_us is None or p99 > t.max_p99_ms:
                    met = False
                    item["why"].append(f"p99 {p99:.1f} ms > {t.max_p99_ms:g} ms")
            if t.max_worker_rss_mib is not None:
                rss = (ours.rss_worker_end_kib or 0) / 1024
                item["wsgiloop_worker_rss_mib"] = rss
                if ours.rss_worker_end_kib is None or rss > t.max_worker_rss_mib:
                    met = False
                    item["why"].append(f"worker RSS {rss:.1f} MiB > "
                                       f"{t.max_worker_rss_mib:g} MiB")
            if ours.flagged or peer.flagged:
                item["why"].append("a run is flagged")
            item["met"] = met
        else:
            item["why"].append("wsgiloop or the peer did not run or answered nothing")
        found.append(item)
    return found


def targets_section(runs: list[Run]) -> list[str]:
    results = target_results(runs)
    if not results:
        return []
    out = ["## Issue 11's targets", "",
           "wsgiloop's Req/s over the named peer's in the same scenario of this run "
           "(the native-mode target is measured by `bench/native.py`).", "",
           "| Scenario | Target | wsgiloop Req/s | Peer Req/s | Ratio | Met |",
           "| --- | --- | ---: | ---: | ---: | --- |"]
    for item in results:
        ratio = f"{item['ratio']:.2f}×" if item["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[item["met"]]
        if item["why"]:
            met += " (" + "; ".join(item["why"]) + ")"
        out.append(f"| {item['scenario']} | {item['target']} | "
                   + (f"{item['wsgiloop_rps']:,.0f}" if item["wsgiloop_rps"] else "—")
                   + " | " + (f"{item['peer_rps']:,.0f}" if item["peer_rps"] else "—")
                   + f" | {ratio} | {met} |")
    out.append("")
    return out


def to_json(args, runs: list[Run], started: datetime.datetime, elapsed: float) -> dict:
    """Everything the report shows, as data: bench/chart.py reads it."""
    scenarios = {sc.name: {"title": sc.title, "connections": sc.connections,
                           "workers": sc.workers} for sc in args.scenarios}
    servers = {s.name: {"package": s.package, "reference": s.reference,
                        "command": show_argv(s.argv) if s.argv else None,
                        "note": s.note} for s in args.servers}
    best = {}
    for name in scenarios:
        b = best_peer([r for r in runs if r.scenario == name])
        best[name] = b.server if b else None
    return {
        "started": started.isoformat(),
        "elapsed_s": round(elapsed, 1),
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "machine": dict(machine_info(args)),
        "versions": {d: version_of(d) for d in VERSIONED},
        "duration_s": args.duration, "warmup_s": args.warmup,
        "repeat": getattr(args, "repeat", 1),
        "scenarios": scenarios,
        "servers": servers,
        "best_peer": best,
        "targets": target_results(runs),
        "runs": [asdict(r) for r in runs],
    }
