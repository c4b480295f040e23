"""Soak benchmark: a paced load straight to `messages` for minutes, with the worker's memory and the disks sampled.

What it runs, all on 127.0.0.1 against the running local stack (`chat4all stack up`):

1. a pipeline of its own (topics under a fresh ``CHAT4ALL_TOPIC_PREFIX``, a fresh app id) and one
   `chat4all worker --role all` with every setting at its default (free web port, temporary data
   dir);
2. ``--conversations`` conversations (default 100) of two users, the recipient on WhatsApp;
3. ``--rate`` msg/s (default 300) for ``--minutes`` (default 10), produced by one aiokafka
   producer (acks=all) **straight to the run's `messages` topic**, not through the gRPC API
   (bench/step_load.py covers the API), in ticks of 20 ms, each stamped with ``ts_ms`` when sent;
4. every ``--metrics-seconds`` (5): the worker's /metrics (routed, DELIVERED and READ counters,
   consumer lag per topic: end offset - committed offset);
   every ``--sample-seconds`` (60, plus one sample before the load and one after the drain): the
   worker's RSS (VmRSS), its RocksDB size (disk use of its data dir, per table and per file kind:
   SST, write-ahead log, RocksDB's info LOG), the disk use of .stack/kafka/data (all of it, and the
   run's own topics and changelogs) and .stack/cassandra/data (SSTables, commit log), the CPU
   seconds of the worker, Kafka, Cassandra and this script since the previous sample, the load
   average;
5. after the load, until the worker has applied every READ (``--drain-timeout``, 120 s), then every
   message is checked READ in Cassandra and send -> DELIVERED (delivered_at - ts) is given per
   minute of the load, to see whether latency drifts.

Growth per minute is the least-squares slope of each series over the load (and over its second
half, after the warm-up); whether that growth is bounded is a matter of the retention settings
(docs/performance.md, "Soak").

Before the load it measures the machine's yardstick (bench/yardstick.py: raw aiokafka pass-through
on the same broker, ``--yardstick-messages`` records, default 100,000, 0 skips it), printed and
written to the results.

Results (results.md, results.json, soak.png, the worker's log) go to ``--out``/soak-<UTC time>/
(default bench/results/). Bounded: minutes x 60 x rate messages, then at most drain-timeout s.

    .venv/bin/python bench/soak.py                                   # 300 msg/s for 10 minutes
    .venv/bin/python bench/soak.py --rate 100 --minutes 2 --sample-seconds 20   # a quick check
    .venv/bin/python bench/soak.py --wait-idle 120        # first wait (<= 120 s) for a quiet machine
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.burst import (  # noqa: E402
    PublishStats,
    add_quiet_args,
    add_yardstick_arg,
    check_alive,
    cpu_ms_per_message,
    latencies_ms,
    loadavg,
    markdown_table,
    measure_yardstick,
    percentile,
    produce,
    results_dir,
    rss_mb,
    run_meta,
    start_workers,
    stop_pipeline,
    wait_quiet,
    write_results,
    yardstick_lines,
)
from bench.proc_cpu import CpuMeter, CpuSample, stack_pids  # noqa: E402
from bench.yardstick import YardstickResult  # noqa: E402
from chat4all.clock import as_utc  # noqa: E402

logger = logging.getLogger("soak")

MB = 1024 * 1024


# --------------------------------------------------------------------------- disk use


def disk_bytes(path: Path) -> int:
    """Disk use of a file tree (allocated blocks, as du counts them); files vanishing meanwhile are skipped."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += disk_bytes(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
        except FileNotFoundError:
            continue
    return total


def rocksdb_usage(data_dir: Path) -> dict[str, dict[str, float]]:
    """RocksDB disk use of a worker's data dir in MiB: per table (partitions summed) and per file kind."""
    tables: dict[str, float] = {}
    kinds: dict[str, float] = {"sst": 0.0, "wal": 0.0, "info_log": 0.0, "other": 0.0}
    for db in data_dir.glob("v*/tables/*.db"):
        table = db.name[:-3].rsplit("-", 1)[0]
        for f in db.iterdir():
            try:
                size = f.stat().st_blocks * 512 / MB
            except FileNotFoundError:
                continue
            tables[table] = tables.get(table, 0.0) + size
            kind = (
                "sst"
                if f.suffix == ".sst"
                else "wal"
                if f.suffix == ".log"
                else "info_log"
                if f.name.startswith("LOG")
                else "other"
            )
            kinds[kind] += size
    return {
        "tables": {k: round(v, 2) for k, v in sorted(tables.items())},
        "kinds": {k: round(v, 2) for k, v in kinds.items()},
    }


def kafka_topic_usage(kafka_data: Path, prefixes: Sequence[str]) -> dict[str, float]:
    """Disk use in MiB of each topic (partitions summed) whose name starts with one of ``prefixes``."""
    usage: dict[str, float] = {}
    for entry in kafka_data.iterdir():
        topic = entry.name.rsplit("-", 1)[0]
        if entry.is_dir() and topic.startswith(tuple(prefixes)):
            usage[topic] = usage.get(topic, 0.0) + disk_bytes(entry) / MB
    return {k: round(v, 2) for k, v in sorted(usage.items())}


# --------------------------------------------------------------------------- samples


@dataclass
class MetricsSample:
    """The worker's counters and lag at one moment (t: seconds since the load started)."""

    t: float
    published: int
    routed: float
    delivered: float
    read: float
    lag: dict[str, float]


@dataclass
class ResourceSample:
    t: float
    published: int
    worker_rss_mb: float | None
    rocksdb_mb: float
    rocksdb: dict[str, dict[str, float]]
    kafka_mb: float
    kafka_own_mb: float
    cassandra_mb: float
    cassandra_sstables_mb: float
    cassandra_commitlog_mb: float
    cpu_s: dict[str, float | None]  # since the previous resource sample
    loadavg: str


def parse_metrics(text: str) -> tuple[float, float, float, dict[str, float]]:
    """routed, DELIVERED applied, READ applied, and consumer lag summed per kind of topic."""
    routed = delivered = read = 0.0
    lag: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        head, _, value = line.rpartition(" ")
        if head.startswith("chat4all_messages_routed_total"):
            routed += float(value)
        elif head.startswith("chat4all_receipt_transitions_total{") and 'outcome="applied"' in head:
            if 'status="DELIVERED"' in head:
                delivered += float(value)
            elif 'status="READ"' in head:
                read += float(value)
        elif head.startswith("chat4all_consumer_lag{"):
            topic = head.split('topic="', 1)[1].split('"', 1)[0]
            kind = (
                "messages"
                if topic.endswith(".messages")
                else "outbound"
                if topic.endswith("-outbound")
                else "status-updates"
                if topic.endswith(".status-updates")
                else "changelogs"
            )
            lag[kind] = lag.get(kind, 0.0) + float(value)
    return routed, delivered, read, lag


def fetch_metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        return resp.read().decode()


@dataclass
class Soak:
    """One soak run's moving parts; ``run`` drives the load and the sampling in one event loop."""

    settings: Any
    worker: Any
    pipeline: Any
    meter: CpuMeter
    rate: float
    seconds: float
    sample_seconds: float
    metrics_seconds: float
    drain_timeout: float
    make_event: Any
    metrics: list[MetricsSample] = field(default_factory=list)
    resources: list[ResourceSample] = field(default_factory=list)
    stats: PublishStats = field(default_factory=PublishStats)
    t0: float = 0.0
    drained_at: float | None = None
    _cpu_before: CpuSample | None = None

    @property
    def count(self) -> int:
        return int(self.rate * self.seconds)

    def sample_resources(self) -> ResourceSample:
        stack = self.settings.stack_dir
        after = self.meter.sample()
        cpu = self.meter.since(self._cpu_before, after) if self._cpu_before else {}
        self._cpu_before = after
        rocks = rocksdb_usage(self.worker.data_dir)
        kafka_data = stack / "kafka" / "data"
        own = kafka_topic_usage(kafka_data, [self.pipeline.prefix, self.pipeline.app_id + "-"])
        cassandra = stack / "cassandra" / "data"
        sample = ResourceSample(
            t=round(time.time() - self.t0, 1) if self.t0 else 0.0,
            published=self.stats.sent,
            worker_rss_mb=rss_mb(self.worker.proc.pid),
            rocksdb_mb=round(disk_bytes(self.worker.data_dir) / MB, 2),
            rocksdb=rocks,
            kafka_mb=round(disk_bytes(kafka_data) / MB, 1),
            kafka_own_mb=round(sum(own.values()), 2),
            cassandra_mb=round(disk_bytes(cassandra) / MB, 1),
            cassandra_sstables_mb=round(disk_bytes(cassandra / "data") / MB, 1),
            cassandra_commitlog_mb=round(disk_bytes(cassandra / "commitlog") / MB, 1),
            cpu_s={k: (round(v, 2) if v is not None else None) for k, v in cpu.items()},
            loadavg=loadavg(),
        )
        self.resources.append(sample)
        logger.info(
            "%5.0f s: published %d, RSS %s MiB, RocksDB %.1f MiB, Kafka own %.1f MiB (all %.0f), "
            "Cassandra %.0f MiB",
            sample.t,
            sample.published,
            f"{sample.worker_rss_mb:.0f}" if sample.worker_rss_mb else "?",
            sample.rocksdb_mb,
            sample.kafka_own_mb,
            sample.kafka_mb,
            sample.cassandra_mb,
        )
        return sample

    async def sample_metrics(self) -> MetricsSample | None:
        try:
            text = await asyncio.to_thread(fetch_metrics, self.worker.url)
        except OSError as exc:
            logger.warning("worker /metrics: %s", exc)
            return None
        routed, delivered, read, lag = parse_metrics(text)
        sample = MetricsSample(
            t=round(time.time() - self.t0, 2),
            published=self.stats.sent,
            routed=routed,
            delivered=delivered,
            read=read,
            lag=lag,
        )
        self.metrics.append(sample)
        return sample

    async def sampler(self, load: asyncio.Task[PublishStats]) -> None:
        next_resources = self.t0 + self.sample_seconds
        drain_deadline: float | None = None
        while True:
            await asyncio.sleep(self.metrics_seconds)
            check_alive([self.worker])
            m = await self.sample_metrics()
            now = time.time()
            if now >= next_resources:
                await asyncio.to_thread(self.sample_resources)
                next_resources += self.sample_seconds
            if load.done():
                drain_deadline = drain_deadline or now + self.drain_timeout
                if m is not None and m.read >= self.count:
                    self.drained_at = now
                    return
                if now >= drain_deadline:
                    logger.warning("drain timeout: %s READ of %d", m.read if m else "?", self.count)
                    return

    async def run(self) -> None:
        await asyncio.to_thread(self.sample_resources)  # the baseline, before any load
        self.t0 = time.time()
        await self.sample_metrics()
        load = asyncio.create_task(
            produce(
                self.settings.kafka_bootstrap,
                self.pipeline.topic("messages"),
                self.count,
                self.make_event,
                rate=self.rate,
                stats=self.stats,
            )
        )
        await self.sampler(load)
        await load  # raises if the producer failed
        await asyncio.to_thread(self.sample_resources)  # after the drain


# --------------------------------------------------------------------------- summary


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute; None for fewer than 2 points."""
    if len(points) < 2:
        return None
    xs, ys = [p[0] / 60 for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var, 3) if var else None


GROWTH_SERIES = {
    "worker_rss_mb": "worker RSS MiB",
    "rocksdb_mb": "RocksDB MiB (worker data dir)",
    "kafka_own_mb": "Kafka MiB, this run's topics and changelogs",
    "kafka_mb": "Kafka MiB, whole data dir (every session's topics)",
    "cassandra_mb": "Cassandra MiB, whole data dir",
    "cassandra_sstables_mb": "Cassandra MiB, SSTables",
    "cassandra_commitlog_mb": "Cassandra MiB, commit log",
}


def growth(resources: Sequence[ResourceSample], load_end_t: float) -> dict[str, dict[str, float | None]]:
    """Per series: first and last value during the load, slope per minute over the load and over its second half."""
    during = [r for r in resources if r.t <= load_end_t + 10]  # the sample taken as the load ends counts
    half = [r for r in during if r.t >= load_end_t / 2]
    out: dict[str, dict[str, float | None]] = {}
    for key in GROWTH_SERIES:
        pts = [(r.t, float(v)) for r in during if (v := getattr(r, key)) is not None]
        out[key] = {
            "first": pts[0][1] if pts else None,
            "last": pts[-1][1] if pts else None,
            "per_min": slope_per_minute(pts),
            "per_min_second_half": slope_per_minute(
                [(r.t, float(v)) for r in half if (v := getattr(r, key)) is not None]
            ),
        }
    return out


def latency_per_minute(rows: Sequence[Any], t0: float) -> list[dict[str, Any]]:
    """Latency send -> DELIVERED, p50/p95/p99 per minute of the load (by the message's ts)."""
    by_minute: dict[int, list[float]] = {}
    for r in rows:
        if r.delivered_at is None:
            continue
        minute = int((as_utc(r.ts).timestamp() - t0) // 60)
        by_minute.setdefault(minute, []).append((r.delivered_at - r.ts).total_seconds() * 1000)
    return [
        {
            "minute": m + 1,
            "messages": len(v),
            "p50_ms": percentile(v, 0.5),
            "p95_ms": percentile(v, 0.95),
            "p99_ms": percentile(v, 0.99),
            "max_ms": max(v),
        }
        for m, v in sorted(by_minute.items())
    ]


def check_cassandra(session: Any, conversations: Sequence[str]) -> tuple[int, list[Any]]:
    """How many of the run's messages are READ in Cassandra, and every row."""
    from cassandra.concurrent import execute_concurrent_with_args

    select = session.prepare(
        "SELECT status, ts, delivered_at, read_at FROM messages WHERE conversation_id = ?"
    )
    results = execute_concurrent_with_args(
        session, select, [(uuid.UUID(c),) for c in conversations], concurrency=16, raise_on_first_error=True
    )
    rows = [r for _ok, rs in results for r in rs]
    return sum(1 for r in rows if r.status == "READ"), rows


def _rate(a: MetricsSample | None, b: MetricsSample | None, attr: str) -> float | None:
    """Per second change of a counter between two metrics samples."""
    if a is None or b is None or b.t <= a.t:
        return None
    return (getattr(b, attr) - getattr(a, attr)) / (b.t - a.t)


def per_minute_table(soak: Soak) -> list[list[Any]]:
    """One row per resource sample: rates and lag from the metrics samples since the previous one."""
    rows = []
    prev_r: ResourceSample | None = None
    prev_m: MetricsSample | None = None
    for r in soak.resources:
        ms = [m for m in soak.metrics if (prev_r is None or m.t > prev_r.t) and m.t <= r.t + 0.5]
        last = ms[-1] if ms else None
        lag_max = max((sum(m.lag.values()) for m in ms), default=None)
        published = r.published - (prev_r.published if prev_r else 0)
        cpu = {k: (v * 1000 / published if v is not None and published else None) for k, v in r.cpu_s.items()}
        span = r.t - prev_r.t if prev_r is not None else 0.0
        known = sum(v or 0.0 for k, v in r.cpu_s.items() if k != "machine")
        others = max(0.0, (r.cpu_s.get("machine") or 0.0) - known) / span if span > 0 and r.cpu_s else None
        rows.append(
            [
                r.t,
                r.published,
                _rate(prev_m, last, "routed"),
                _rate(prev_m, last, "delivered"),
                lag_max,
                r.worker_rss_mb,
                r.rocksdb_mb,
                r.kafka_own_mb,
                r.kafka_mb,
                r.cassandra_sstables_mb,
                r.cassandra_commitlog_mb,
                cpu.get("worker"),
                cpu.get("kafka"),
                cpu.get("cassandra"),
                others,
                r.loadavg,
            ]
        )
        prev_r = r
        prev_m = last or prev_m
    return rows


def render_markdown(
    meta: Mapping[str, Any], soak: Soak, summary: Mapping[str, Any], yardstick: YardstickResult | None = None
) -> str:
    g = summary["growth"]
    lines = [
        f"Soak, {meta['date']} — `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; code {meta['commit']}; load average {meta['loadavg_start']} at the "
        f"start, {meta.get('loadavg_end', '?')} at the end. Load: {soak.rate:g} msg/s produced straight to "
        f"the run's `messages` topic (not through the API) for {soak.seconds / 60:g} min.",
        "",
        *yardstick_lines(yardstick),
        f"Published {summary['published']} in {summary['publish_s']:.1f} s ({summary['published_per_s']:.1f} "
        f"msg/s, worst producer lag {summary['producer_lag_max_ms']:.0f} ms); "
        + (
            f"worker applied every READ {summary['drain_s']} s after the last publish"
            if summary["drain_s"] is not None
            else f"**the backlog was not drained** {soak.drain_timeout:g} s after the last publish (the load was "
            "above what the pipeline sustained on this machine then)"
        )
        + f"; READ in Cassandra: {summary['read_in_cassandra']} of "
        f"{summary['published']}; send -> DELIVERED p50 / p95 / p99 {summary['delivered_p50_ms']} / "
        f"{summary['delivered_p95_ms']} / {summary['delivered_p99_ms']} ms (Cassandra delivered_at - ts).",
        "",
        "Per sample (rates and lag from the worker's /metrics since the previous sample; CPU ms per message "
        "published since the previous sample, idle included; others' cores: busy CPU of the machine none of the "
        "measured processes used, i.e. other sessions):",
        "",
    ]
    lines.append(
        markdown_table(
            [
                "t s",
                "published",
                "routed/s",
                "DELIVERED/s",
                "max lag",
                "RSS MiB",
                "RocksDB MiB",
                "Kafka own MiB",
                "Kafka all MiB",
                "Cassandra SSTables MiB",
                "commit log MiB",
                "worker ms/msg",
                "Kafka ms/msg",
                "Cassandra ms/msg",
                "others' cores",
                "loadavg",
            ],
            per_minute_table(soak),
        )
    )
    lines += ["", "Growth during the load (least-squares slope; second half = after the warm-up):", ""]
    lines.append(
        markdown_table(
            ["series", "first", "last", "per minute", "per minute, second half"],
            [
                [label, g[k]["first"], g[k]["last"], g[k]["per_min"], g[k]["per_min_second_half"]]
                for k, label in GROWTH_SERIES.items()
            ],
        )
    )
    last = soak.resources[-1]
    lines += [
        "",
        "At the end: RocksDB per table (MiB) "
        + ", ".join(f"{k} {v:g}" for k, v in last.rocksdb["tables"].items())
        + "; per file kind "
        + ", ".join(f"{k} {v:g}" for k, v in last.rocksdb["kinds"].items())
        + ".",
        "Kafka, this run's topics (MiB): "
        + ", ".join(
            f"{k.removeprefix(soak.pipeline.prefix)} {v:g}" for k, v in summary["kafka_topics_mb"].items()
        )
        + ".",
        "",
        "Overall CPU ms per message (load start to the drain, idle included; bench = this script, "
        "other = busy CPU of the machine none of these used): "
        + ", ".join(f"{k} {v:.2f}" for k, v in summary["cpu_ms_per_msg"].items() if v is not None)
        + ".",
        "",
        "send -> DELIVERED per minute of the load (Cassandra delivered_at - ts):",
        "",
    ]
    lines.append(
        markdown_table(
            ["minute", "messages", "p50 ms", "p95 ms", "p99 ms", "max ms"],
            [
                [m["minute"], m["messages"], m["p50_ms"], m["p95_ms"], m["p99_ms"], m["max_ms"]]
                for m in summary["latency_per_minute"]
            ],
        )
    )
    return "\n".join(lines) + "\n"


def plot_soak(soak: Soak, path: Path, *, title: str) -> Path | None:
    """Four panels: worker RSS; RocksDB; disk (Kafka own and all, Cassandra); lag and DELIVERED/s over time."""
    from bench.plots import _pyplot

    plt = _pyplot()
    if plt is None or not soak.resources:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    t = [r.t / 60 for r in soak.resources]
    ax = axes[0][0]
    ax.plot(t, [r.worker_rss_mb for r in soak.resources], marker="o")
    ax.set_title("worker RSS (MiB)", fontsize=10)
    ax = axes[0][1]
    ax.plot(t, [r.rocksdb_mb for r in soak.resources], marker="o", label="data dir")
    for kind in ("sst", "wal", "info_log"):
        ax.plot(t, [r.rocksdb["kinds"].get(kind, 0.0) for r in soak.resources], linestyle="--", label=kind)
    ax.set_title("RocksDB on disk (MiB)", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1][0]
    base = soak.resources[0]
    for key, label, marker in (
        ("kafka_own_mb", "Kafka: this run's topics", "o"),
        ("kafka_mb", "Kafka: whole data dir (every session)", "."),
        ("cassandra_sstables_mb", "Cassandra SSTables (whole node)", "s"),
        ("cassandra_commitlog_mb", "Cassandra commit log", "^"),
        ("rocksdb_mb", "worker RocksDB", "x"),
    ):
        ax.plot(t, [getattr(r, key) - getattr(base, key) for r in soak.resources], marker=marker, label=label)
    ax.set_title("disk use, growth since the load started (MiB)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel("minutes since the load started")
    ax = axes[1][1]
    mt = [m.t / 60 for m in soak.metrics]
    for kind in sorted({k for m in soak.metrics for k in m.lag}):
        ax.plot(mt, [m.lag.get(kind, 0.0) for m in soak.metrics], linewidth=0.8, label=f"lag: {kind}")
    ax.plot(
        mt,
        [max(0.0, m.published - m.delivered) for m in soak.metrics],
        color="tab:purple",
        linewidth=2,
        label="published, not yet DELIVERED",
    )
    ax.set_ylabel("records / messages")
    right = ax.twinx()
    window = max(1, round(30 / soak.metrics_seconds))  # DELIVERED/s over 30 s: the 5 s figure is jumpy
    rates = [
        (b.t / 60, (b.delivered - a.delivered) / (b.t - a.t))
        for a, b in zip(soak.metrics, soak.metrics[window:], strict=False)
        if b.t > a.t
    ]
    right.plot(
        [x for x, _ in rates], [y for _, y in rates], color="black", linewidth=1.5, label="DELIVERED/s (30 s)"
    )
    right.axhline(soak.rate, color="grey", linestyle=":", label=f"offered {soak.rate:g}/s")
    if soak.stats.last_send:
        right.axvline(
            (soak.stats.last_send - soak.t0) / 60,
            color="grey",
            linestyle="--",
            linewidth=0.8,
            label="load ends",
        )
    right.set_ylabel("msg/s")
    right.set_ylim(bottom=0)
    a, b = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(a[0] + b[0], a[1] + b[1], fontsize=7, loc="upper left")
    ax.set_title("backlog, consumer lag (end - committed) and DELIVERED rate", fontsize=10)
    ax.set_xlabel("minutes since the load started")
    for row in axes:
        for ax in row:
            ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0, help="msg/s")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument(
        "--sample-seconds", type=float, default=60.0, help="RSS, RocksDB, disk and CPU every ..."
    )
    parser.add_argument("--metrics-seconds", type=float, default=5.0, help="lag and counters every ...")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="after the last publish")
    add_quiet_args(parser)
    add_yardstick_arg(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if (
        args.rate <= 0
        or args.minutes <= 0
        or args.conversations <= 0
        or args.sample_seconds <= 0
        or args.metrics_seconds <= 0
    ):
        parser.error(
            "--rate, --minutes, --conversations, --sample-seconds and --metrics-seconds must be positive"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    from chat4all.cassandra import connect
    from chat4all.settings import get_settings
    from cli.harness.isolation import IsolatedPipeline
    from cli.harness.seeding import message_event, setup_conversations

    meta = run_meta("soak", argv)
    out = results_dir(args.out, "soak", meta)
    settings = get_settings()
    yardstick = measure_yardstick(settings.kafka_bootstrap, args.yardstick_messages)
    session = connect(settings)
    pipeline = IsolatedPipeline(settings, name="c4a-soak")
    try:
        worker = start_workers(pipeline, 1, log_dir=out)[0]
        convs = setup_conversations(session, args.conversations, channels={"whatsapp": "+5511999990000"})
        cids = list(convs)

        def make_event(i: int) -> dict[str, Any]:
            cid = cids[i % len(cids)]
            return message_event(cid, convs[cid][0], content=f"soak{i}")

        meter = CpuMeter({"worker": worker.proc.pid, **stack_pids(settings.stack_dir), "bench": os.getpid()})
        soak = Soak(
            settings=settings,
            worker=worker,
            pipeline=pipeline,
            meter=meter,
            rate=args.rate,
            seconds=args.minutes * 60,
            sample_seconds=args.sample_seconds,
            metrics_seconds=args.metrics_seconds,
            drain_timeout=args.drain_timeout,
            make_event=make_event,
        )
        if args.wait_idle > 0:
            wait_quiet(limit_s=args.wait_idle, max_cores=args.idle_cores + 0.05)
        cpu_start = meter.sample()
        logger.info(
            "app id %s: %g msg/s for %g min (%d messages)",
            pipeline.app_id,
            args.rate,
            args.minutes,
            soak.count,
        )
        asyncio.run(soak.run())
        cpu_total = meter.since(cpu_start)
        read_count, rows = check_cassandra(session, cids)
        kafka_topics = kafka_topic_usage(
            settings.stack_dir / "kafka" / "data", [pipeline.prefix, pipeline.app_id + "-"]
        )
    finally:
        stop_pipeline(pipeline)
        session.cluster.shutdown()
    meta["loadavg_end"] = loadavg()
    n = soak.stats.sent
    load_end_t = soak.stats.last_send - soak.t0
    delivered_ms, _ = latencies_ms(rows)
    summary = {
        "published": n,
        "publish_s": round(load_end_t, 1),
        "published_per_s": round(n / load_end_t, 1) if load_end_t else 0,
        "producer_lag_max_ms": soak.stats.lag_max_s * 1000,
        "drain_s": round(soak.drained_at - soak.stats.last_send, 1) if soak.drained_at else None,
        "read_in_cassandra": read_count,
        "delivered_p50_ms": percentile(delivered_ms, 0.5),
        "delivered_p95_ms": percentile(delivered_ms, 0.95),
        "delivered_p99_ms": percentile(delivered_ms, 0.99),
        "growth": growth(soak.resources, load_end_t),
        "cpu_ms_per_msg": {
            k: (round(v, 3) if v is not None else None)
            for k, v in cpu_ms_per_message(
                cpu_total, n, own=["worker", "kafka", "cassandra", "redis", "s3proxy", "bench"]
            ).items()
        },
        "kafka_topics_mb": kafka_topics,
        "latency_per_minute": latency_per_minute(rows, soak.t0),
    }
    table = render_markdown(meta, soak, summary, yardstick)
    write_results(
        out,
        table,
        {
            "meta": meta,
            "yardstick": asdict(yardstick) if yardstick else None,
            "rate": args.rate,
            "minutes": args.minutes,
            "summary": summary,
            "resources": [asdict(r) for r in soak.resources],
            "metrics": [asdict(m) for m in soak.metrics],
        },
    )
    plot = plot_soak(
        soak,
        out / "soak.png",
        title=f"Soak, {meta['date']}: {args.rate:g} msg/s straight to "
        f"`messages`, {args.minutes:g} min ({meta['commit']})",
    )
    print(table)
    print(f"Results in {out}" + (f" (plot {plot.name})" if plot else ""))
    return 0 if read_count == n else 1


if __name__ == "__main__":
    sys.exit(main())
