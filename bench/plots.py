"""PNG plots for the benchmarks' results (matplotlib, from the `dev` extras); optional everywhere."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _pyplot() -> Any | None:
    """matplotlib.pyplot with a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install -e '.[dev]')")
        return None
    return plt


def plot_step_load(steps: Sequence[dict[str, Any]], path: Path, *, title: str = "Step load") -> Path | None:
    """Accepted/s, DELIVERED/s and send -> DELIVERED p95 against the offered rate; returns the file, or None.

    ``steps``: the step-load result rows (``offered_rate``, ``accepted_per_s``, optional
    ``delivered_per_s``, ``delivered_p95_s``: None or inf when more than 5% were never DELIVERED).
    """
    plt = _pyplot()
    if plt is None or not steps:
        return None
    offered = [s["offered_rate"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(offered, offered, linestyle=":", color="grey", label="offered")
    ax.plot(offered, [s["accepted_per_s"] for s in steps], marker="o", label="accepted/s")
    if all("delivered_per_s" in s for s in steps):
        ax.plot(offered, [s["delivered_per_s"] for s in steps], marker="^", label="DELIVERED/s")
    ax.set_xlabel("offered rate (msg/s)")
    ax.set_ylabel("msg/s")
    ax.grid(alpha=0.3)
    right = ax.twinx()
    p95 = [s["delivered_p95_s"] for s in steps]
    shown = [(o, v) for o, v in zip(offered, p95, strict=True) if v is not None and v != float("inf")]
    top = max([10.0] + [v * 2 for _, v in shown])
    if shown:
        right.plot(
            [o for o, _ in shown],
            [v for _, v in shown],
            marker="s",
            color="tab:red",
            label="send -> DELIVERED p95 (s)",
        )
    never = [o for o, v in zip(offered, p95, strict=True) if v is None or v == float("inf")]
    if never:  # p95 unbounded: more than 5% never seen DELIVERED
        right.plot(
            never,
            [top / 1.3] * len(never),
            marker="x",
            linestyle="",
            color="tab:red",
            markersize=9,
            label="p95 unbounded (>5% never DELIVERED)",
        )
    right.axhline(1.5, color="tab:red", linestyle="--", linewidth=0.8, label="p95 target 1.5 s")
    right.set_ylabel("send -> DELIVERED p95, seconds (log)")
    right.set_yscale("log")
    right.set_ylim(0.1, top)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
