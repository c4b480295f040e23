"""The table and plot of one bench/api_bench.sh run, from the ghz summaries it left in its folder.

    .venv/bin/python bench/api_report.py bench/results/api-<time>/

Writes results.md (per run: offered and achieved rate, latency percentiles, status codes, API CPU
per call) and api-bench.png (achieved against offered rate; latency percentiles of each run, as
a CDF) into the same folder, and prints the table.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("bench.api_report")

_UNITS_MS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(kw_only=True)
class Run:
    name: str
    offered: str
    count: int = 0
    achieved: float = 0.0
    percentiles: dict[int, float] = field(default_factory=dict)  # percent -> ms
    codes: dict[str, int] = field(default_factory=dict)
    cpu_ms: float | None = None


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(path: Path) -> Run:
    text = path.read_text()
    name = path.stem
    offered = {"sequential": "sequential", "sequential-cmid": "sequential, client_message_id"}.get(name)
    if offered is None:
        rate = name.removeprefix("rate-")
        offered = "max" if rate == "0" else f"{int(rate):,}/s"
    run = Run(name=name, offered=offered)
    if m := re.search(r"Count:\s+(\d+)", text):
        run.count = int(m.group(1))
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        run.achieved = float(m.group(1))
    for pct, value, unit in re.findall(r"(\d+) % in ([\d.]+) (ns|µs|us|ms|s)\b", text):
        run.percentiles[int(pct)] = _ms(value, unit)
    for code, n in re.findall(r"\[(\w+)\]\s+(\d+) responses", text):
        run.codes[code] = int(n)
    if m := re.search(r"API CPU per call: ([\d.]+) ms", text):
        run.cpu_ms = float(m.group(1))
    return run


def table(runs: list[Run]) -> str:
    lines = [
        "| offered | calls | achieved | p50 | p95 | p99 | codes | API CPU / call |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        p = r.percentiles
        codes = ", ".join(f"{k} {v:,}" for k, v in r.codes.items())
        cpu = f"{r.cpu_ms:.3f} ms" if r.cpu_ms is not None else "-"
        lines.append(
            f"| {r.offered} | {r.count:,} | {r.achieved:,.0f}/s | {p.get(50, 0):.2f} ms | {p.get(95, 0):.2f} ms | "
            f"{p.get(99, 0):.2f} ms | {codes} | {cpu} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[Run], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib not installed: no plot")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    rated = [r for r in runs if r.name.startswith("rate-") and r.name != "rate-0"]
    if rated:
        offered = [int(r.name.removeprefix("rate-")) for r in rated]
        left.plot(offered, [r.achieved for r in rated], marker="o", label="achieved")
        left.plot(offered, offered, linestyle=":", color="grey", label="offered")
        unthrottled = [r for r in runs if r.name == "rate-0"]
        if unthrottled:
            left.axhline(
                unthrottled[0].achieved,
                color="tab:green",
                linestyle="--",
                label=f"unthrottled: {unthrottled[0].achieved:,.0f}/s",
            )
        left.set_xlabel("offered (SendMessage/s)")
        left.set_ylabel("achieved (SendMessage/s)")
        left.legend(fontsize="small")
        left.set_title("Throughput, one API process")
    for r in runs:
        if r.percentiles:
            pcts = sorted(r.percentiles)
            right.plot([r.percentiles[p] for p in pcts], [p / 100 for p in pcts], marker=".", label=r.offered)
    right.set_xscale("log")
    right.set_xlabel("latency (ms, log)")
    right.set_ylabel("share of calls")
    right.legend(fontsize="small")
    right.set_title("Latency CDF (ghz percentiles)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _order(run: Run) -> tuple[int, int]:
    """Fixed rates by rate, then unthrottled, then the sequential runs."""
    if run.name.startswith("rate-"):
        rate = int(run.name.removeprefix("rate-"))
        return (1, 0) if rate == 0 else (0, rate)
    return (2 if run.name == "sequential" else 3, 0)


def main(folder: Path) -> None:
    files = [
        p
        for p in folder.glob("*.txt")
        if p.stem.startswith("rate-") or p.stem in ("sequential", "sequential-cmid")
    ]
    runs = sorted((parse(p) for p in files), key=_order)
    text = table(runs)
    (folder / "results.md").write_text(text)
    plot(runs, folder / "api-bench.png")
    print(text, end="")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(Path(sys.argv[1]))
