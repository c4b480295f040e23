"""Worker scaling benchmark: the burst of bench/burst.py with 1, 2 and 4 workers, msg/s against workers.

Per worker count (``--workers``, default 1,2,4) and repeat (``--repeats``, default 1; the order is
1,2,4,1,2,4... so slow spells of a shared machine spread over the counts): a pipeline of its own
(fresh topics and app id), that many `chat4all worker --role all` processes with every setting at
its default (each its own web port and data dir; the run starts once the group has settled), then
``--messages`` messages (default 10,000) over ``--conversations`` conversations (default 120, so
the 12 partitions of `messages` carry similar loads) published at once straight to `messages`,
timed from the first publish to the last READ in Cassandra (see bench/burst.py).

Printed and written: per run, msg/s to READ and to DELIVERED, CPU ms per message of all workers
together, Kafka and Cassandra (/proc, first publish to last READ, idle included); per worker count,
the median msg/s and its ratio to one worker's median. On this 2-core machine, where the workers
share the cores with Kafka and Cassandra, more workers cannot add CPU: the target of issue 9 is
that two workers reach >= 0.9x of one (the cost of a second group member and of the table
standbys stays small). What it should show on a machine with more cores: docs/performance.md,
"Worker scaling".

Before the first run it measures the machine's yardstick (bench/yardstick.py: raw aiokafka
pass-through on the same broker, ``--yardstick-messages`` records, default 100,000, 0 skips it),
printed and written to the results.

Results (results.md, results.json, scaling.png, the workers' logs) go to
``--out``/scaling-<UTC time>/ (default bench/results/). Bounded: each run ends ``--timeout`` s after
its first publish (default 300).

    .venv/bin/python bench/scaling.py                                  # 1, 2, 4 workers, 10,000 messages
    .venv/bin/python bench/scaling.py --repeats 3                      # median of 3 per count
    .venv/bin/python bench/scaling.py --workers 1,2 --messages 2000    # a quick check
    .venv/bin/python bench/scaling.py --repeats 3 --wait-idle 120      # each run waits for a quiet machine
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.burst import (  # noqa: E402
    BurstResult,
    add_quiet_args,
    add_yardstick_arg,
    loadavg,
    markdown_table,
    measure_yardstick,
    results_dir,
    run_burst,
    run_meta,
    write_results,
    yardstick_lines,
)
from bench.yardstick import YardstickResult  # noqa: E402

logger = logging.getLogger("scaling")

TARGET_RATIO_TWO = 0.9


def summarise(results: Sequence[BurstResult]) -> list[dict[str, Any]]:
    """Per worker count: the runs' msg/s, their median and the ratio to one worker's median."""
    counts = sorted({r.workers for r in results})
    medians = {n: statistics.median(r.msgs_per_s for r in results if r.workers == n) for n in counts}
    base = medians.get(1)
    rows = []
    for n in counts:
        runs = [r for r in results if r.workers == n]
        rows.append(
            {
                "workers": n,
                "runs": [r.msgs_per_s for r in runs],
                "complete": all(r.complete for r in runs),
                "median_msgs_per_s": medians[n],
                "median_msgs_per_s_delivered": statistics.median(
                    r.msgs_per_s_delivered for r in runs if r.msgs_per_s_delivered is not None
                )
                if any(r.msgs_per_s_delivered for r in runs)
                else None,
                "ratio_to_one": round(medians[n] / base, 3) if base else None,
                # Each repeat's n-worker run against the 1-worker run of the same repeat (minutes apart, so
                # less exposed to the slow spells of a shared machine than the ratio of medians).
                "paired_ratios": [
                    round(r.msgs_per_s / one.msgs_per_s, 2)
                    for r, one in zip(runs, [x for x in results if x.workers == 1], strict=False)
                    if one.msgs_per_s
                ]
                if base
                else [],
                "workers_cpu_ms_per_msg": statistics.median(
                    r.cpu_ms_per_msg.get("workers") or 0.0 for r in runs
                ),
                "kafka_cpu_ms_per_msg": statistics.median(r.cpu_ms_per_msg.get("kafka") or 0.0 for r in runs),
                "cassandra_cpu_ms_per_msg": statistics.median(
                    r.cpu_ms_per_msg.get("cassandra") or 0.0 for r in runs
                ),
            }
        )
    return rows


def render_markdown(
    meta: Mapping[str, Any],
    results: Sequence[BurstResult],
    summary: Sequence[dict[str, Any]],
    yardstick: YardstickResult | None = None,
) -> str:
    lines = [
        f"Worker scaling, {meta['date']} — `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; code {meta['commit']}; load average {meta['loadavg_start']} at the "
        f"start, {meta.get('loadavg_end', '?')} at the end.",
        "",
    ]
    lines += yardstick_lines(yardstick)
    lines.append(
        markdown_table(
            [
                "workers",
                "runs msg/s to READ",
                "median msg/s",
                "ratio to 1 worker",
                "ratio per repeat",
                "median msg/s to DELIVERED",
                "workers CPU ms/msg",
                "Kafka CPU ms/msg",
                "Cassandra CPU ms/msg",
                "all READ",
            ],
            [
                [
                    s["workers"],
                    ", ".join(f"{v:g}" for v in s["runs"]),
                    s["median_msgs_per_s"],
                    s["ratio_to_one"],
                    ", ".join(f"{v:g}" for v in s["paired_ratios"]),
                    s["median_msgs_per_s_delivered"],
                    s["workers_cpu_ms_per_msg"],
                    s["kafka_cpu_ms_per_msg"],
                    s["cassandra_cpu_ms_per_msg"],
                    "yes" if s["complete"] else "no",
                ]
                for s in summary
            ],
        )
    )
    two = next((s for s in summary if s["workers"] == 2), None)
    if two is not None and two["ratio_to_one"] is not None:
        met = two["ratio_to_one"] >= TARGET_RATIO_TWO and two["complete"]
        lines += [
            "",
            f"Two workers reach {two['ratio_to_one']:.2f}x of one (target >= {TARGET_RATIO_TWO}x): "
            f"{'met' if met else 'not met'}.",
        ]
    lines += ["", "Every run (CPU ms per message, first publish to last READ, idle included):", ""]
    lines.append(
        markdown_table(
            [
                "workers",
                "messages",
                "READ",
                "all DELIVERED s",
                "elapsed s",
                "msg/s",
                "DELIVERED p50/p99 ms",
                "workers",
                "kafka",
                "cassandra",
                "bench",
                "other",
                "others' cores",
                "assigned partitions",
                "loadavg",
                "code",
            ],
            [
                [
                    r.workers,
                    r.messages,
                    r.read,
                    r.delivered_s,
                    r.elapsed_s,
                    r.msgs_per_s,
                    f"{r.delivered_ms['p50']} / {r.delivered_ms['p99']}",
                    r.cpu_ms_per_msg.get("workers"),
                    r.cpu_ms_per_msg.get("kafka"),
                    r.cpu_ms_per_msg.get("cassandra"),
                    r.cpu_ms_per_msg.get("bench"),
                    r.cpu_ms_per_msg.get("other"),
                    r.other_cores,
                    " / ".join(str(a) for a in r.assigned_partitions),
                    r.loadavg,
                    r.code,
                ]
                for r in results
            ],
        )
    )
    return "\n".join(lines) + "\n"


def plot_scaling(
    results: Sequence[BurstResult], summary: Sequence[dict[str, Any]], path: Path, *, title: str
) -> Path | None:
    """Plot msg/s to READ against workers (each run and the medians), with the 0.9x-of-one line.

    The workers' CPU ms per message go on a second axis.
    """
    from bench.plots import _pyplot

    plt = _pyplot()
    if plt is None or not summary:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.scatter(
        [r.workers for r in results],
        [r.msgs_per_s for r in results],
        color="tab:blue",
        alpha=0.5,
        label="each run: msg/s to READ",
    )
    ax.plot(
        [s["workers"] for s in summary],
        [s["median_msgs_per_s"] for s in summary],
        marker="o",
        color="tab:blue",
        label="median msg/s to READ",
    )
    delivered = [
        (s["workers"], s["median_msgs_per_s_delivered"]) for s in summary if s["median_msgs_per_s_delivered"]
    ]
    if delivered:
        ax.plot(
            [w for w, _ in delivered],
            [v for _, v in delivered],
            marker="^",
            color="tab:green",
            label="median msg/s to all DELIVERED",
        )
    base = next((s["median_msgs_per_s"] for s in summary if s["workers"] == 1), None)
    if base:
        ax.axhline(
            TARGET_RATIO_TWO * base, color="grey", linestyle=":", label=f"{TARGET_RATIO_TWO}x of one worker"
        )
    ax.axhline(400, color="tab:red", linestyle="--", linewidth=0.8, label="burst target 400 msg/s (1 worker)")
    ax.set_xlabel("workers (--role all) on this machine")
    ax.set_ylabel("msg/s")
    ax.set_xticks([s["workers"] for s in summary])
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    right = ax.twinx()
    right.plot(
        [s["workers"] for s in summary],
        [s["workers_cpu_ms_per_msg"] for s in summary],
        marker="s",
        color="tab:orange",
        linestyle="--",
        label="workers' CPU ms per message (all together)",
    )
    right.set_ylabel("CPU ms per message")
    right.set_ylim(bottom=0)
    lines, more = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(
        lines[0] + more[0],
        lines[1] + more[1],
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=2,
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=120)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="per run, seconds from the first publish"
    )
    parser.add_argument("--poll-interval", type=float, default=0.5)
    add_quiet_args(parser)
    add_yardstick_arg(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    except ValueError:
        parser.error("--workers: positive integers, e.g. 1,2,4")
    if not args.workers or any(w <= 0 for w in args.workers) or args.repeats <= 0 or args.messages <= 0:
        parser.error("--workers, --repeats and --messages must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    from chat4all.cassandra import connect
    from chat4all.settings import get_settings

    meta = run_meta("scaling", argv)
    out = results_dir(args.out, "scaling", meta)
    settings = get_settings()
    yardstick = measure_yardstick(settings.kafka_bootstrap, args.yardstick_messages)
    session = connect(settings)
    results: list[BurstResult] = []
    try:
        for repeat in range(args.repeats):
            for n in args.workers:
                log_dir = out / f"run-{repeat + 1}-workers-{n}"
                log_dir.mkdir(exist_ok=True)
                logger.info("repeat %d: %d worker(s), %d messages", repeat + 1, n, args.messages)
                result = run_burst(
                    settings,
                    session,
                    workers=n,
                    messages=args.messages,
                    conversations=args.conversations,
                    timeout=args.timeout,
                    poll_interval=args.poll_interval,
                    log_dir=log_dir,
                    name="c4a-scale",
                    wait_idle=args.wait_idle,
                    idle_cores=args.idle_cores,
                )
                logger.info(
                    "%d worker(s): %.1f msg/s to READ (%s)",
                    n,
                    result.msgs_per_s,
                    "complete" if result.complete else "INCOMPLETE",
                )
                results.append(result)
    finally:
        session.cluster.shutdown()
    meta["loadavg_end"] = loadavg()
    summary = summarise(results)
    table = render_markdown(meta, results, summary, yardstick)
    runs = [
        {k: v for k, v in asdict(r).items() if k not in ("samples", "delivered_cdf_ms", "read_cdf_ms")}
        for r in results
    ]
    write_results(
        out,
        table,
        {
            "meta": meta,
            "yardstick": asdict(yardstick) if yardstick else None,
            "summary": summary,
            "runs": runs,
        },
    )
    plot = plot_scaling(
        results,
        summary,
        out / "scaling.png",
        title=f"Worker scaling, {meta['date']}, {args.messages} messages ({meta['commit']})",
    )
    print(table)
    print(f"Results in {out}" + (f" (plot {plot.name})" if plot else ""))
    return 0 if all(r.complete for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
