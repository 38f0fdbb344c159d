"""Draw the JSON written by ``bench/run.py --json`` as a PNG bar chart: one panel per
scenario, one horizontal bar per server (Req/s, the median when the run was repeated),
wsgiloop highlighted, the reference lines (the C ceiling, Tornado's native handler)
hatched, every bar labelled with its Req/s and its ratio to the best WSGI peer.

    python bench/chart.py bench/results/latest.json                # -> latest.png beside it
    python bench/chart.py bench/results/latest.json --out docs/bench.png
    python bench/chart.py FILE --scenarios hello,post-64k --servers wsgiloop,bjoern,granian

Needs matplotlib (in the `bench` extra); it draws without a display (Agg).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

OURS = "wsgiloop"
COLOUR_OURS = "#d62728"
COLOUR_PEER = "#4c72b0"
COLOUR_REFERENCE = "#bbbbbb"


def panels(data: dict, scenarios: list[str] | None, servers: list[str] | None):
    """[(scenario, title, [(server, rps, flagged, reference)], best peer)] in run order."""
    out = []
    for name, info in data["scenarios"].items():
        if scenarios and name not in scenarios or info.get("workers", 1) > 1:
            continue
        bars = []
        for run in data["runs"]:
            if run["scenario"] != name or run.get("skipped") or not run.get("rps"):
                continue
            if servers and run["server"] not in servers:
                continue
            ref = data["servers"].get(run["server"], {}).get("reference", False)
            bars.append((run["server"], run["rps"], bool(run["problems"]), ref))
        if bars:
            out.append((name, info["title"], bars, data.get("best_peer", {}).get(name)))
    return out


def draw(data: dict, out: Path, scenarios: list[str] | None = None,
         servers: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = panels(data, scenarios, servers)
    if not found:
        raise SystemExit("nothing to draw: no measured runs in the JSON for these scenarios")
    cols = 2 if len(found) > 1 else 1
    rows = math.ceil(len(found) / cols)
    height = max(len(bars) for _, _, bars, _ in found) * 0.32 + 1.2
    fig, axes = plt.subplots(rows, cols, figsize=(7.2 * cols, height * rows), squeeze=False)
    for ax in axes.flat[len(found):]:
        ax.axis("off")
    for ax, (name, _title, bars, best) in zip(axes.flat, found, strict=False):
        best_rps = next((rps for server, rps, _, _ in bars if server == best), None)
        labels = [server + (" (!)" if flagged else "") for server, _, flagged, _ in bars]
        values = [rps for _, rps, _, _ in bars]
        colours = [COLOUR_OURS if server == OURS else COLOUR_REFERENCE if ref else COLOUR_PEER
                   for server, _, _, ref in bars]
        ys = range(len(bars))
        drawn = ax.barh(ys, values, color=colours)
        for bar, (_, _, _, ref) in zip(drawn, bars, strict=True):
            if ref:
                bar.set_hatch("//")
        ax.set_yticks(list(ys), labels)
        ax.invert_yaxis()
        top = max(values)
        ax.set_xlim(0, top * 1.32)
        for y, rps in zip(ys, values, strict=True):
            text = f"{rps:,.0f}"
            if best_rps:
                text += f"  {rps / best_rps:.2f}×"
            ax.text(rps + top * 0.01, y, text, va="center", fontsize=8)
        ax.set_title(f"{name}" + (f"  (ratios vs {best})" if best else ""), fontsize=10,
                     loc="left")
        ax.set_xlabel("requests/s", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    machine = data.get("machine", {})
    fig.suptitle(
        f"wsgiloop vs peers, one worker pinned to one core (wrk on the other); "
        f"{data.get('repeat', 1)} × {data.get('duration_s', '?')} s runs, median\n"
        f"{machine.get('CPU', '?')}, {machine.get('nproc', '?')} cores, "
        f"{machine.get('Python', '?')}, {data.get('started', '')[:16].replace('T', ' ')} UTC"
        "   red: wsgiloop; hatched grey: reference lines (not WSGI); (!): flagged run",
        fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="a file written by bench/run.py --json")
    parser.add_argument("--out", type=Path, help="PNG to write (default: the JSON's name .png)")
    parser.add_argument("--scenarios", help="comma-separated subset (default: all measured)")
    parser.add_argument("--servers", help="comma-separated subset (default: all measured)")
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text())
    out = args.out or args.json.with_suffix(".png")

    def split(value: str | None) -> list[str] | None:
        return [x.strip() for x in value.split(",") if x.strip()] if value else None

    draw(data, out, split(args.scenarios), split(args.servers))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
