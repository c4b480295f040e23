"""Burst benchmark: messages published straight to `messages` at once, all READ in Cassandra, msg/s end to end.

What it runs, all on 127.0.0.1 against the running local stack (`chat4all stack up`):

1. a pipeline of its own (tests/fixtures/worker.py ``IsolatedPipeline``): topics under a fresh
   ``CHAT4ALL_TOPIC_PREFIX`` and a fresh app id, and ``--workers`` `chat4all worker --role all`
   processes (default 1; free web ports, temporary data dirs). No other setting is changed: the
   simulated delays (DELIVERED 100-500 ms, READ 2-5 s later), the ticks, the batching and the
   log level are the worker's defaults;
2. ``--conversations`` conversations (default 100) of two users each, the recipient with a
   WhatsApp channel linked, written to Cassandra as the API would;
3. ``--messages`` MessageEvents (default 10,000; round-robin over the conversations) produced to
   the run's `messages` topic as fast as one aiokafka producer goes (acks=all), each stamped with
   ``ts_ms`` when it is handed to the producer (the API stamps it when it accepts a send);
4. the run's conversations are polled in Cassandra every ``--poll-interval`` s (0.5) until every
   message's status is READ (or ``--timeout`` s from the first publish, default 300).

msg/s = messages READ / seconds from the first publish to the poll that saw the last READ (the
simulated 0.1-0.5 s + 2-5 s receipt delays included; the poll makes the figure conservative by up
to one interval). Also: when the last record was acked by the broker, the count of routed (row
written), DELIVERED and READ messages over time, send -> DELIVERED and send -> READ percentiles
(Cassandra's delivered_at / read_at - ts, one clock: the connector stamps them on this machine),
CPU ms per message of the worker(s), Kafka, Cassandra and this script over the same window
(utime+stime from /proc, idle included; "other" = busy CPU of the machine none of them used), the
worker's peak RSS and the load average. The script's own polling costs Cassandra some CPU.

Before the burst it measures the machine's yardstick (bench/yardstick.py: raw aiokafka pass-through on
the same broker, ``--yardstick-messages`` records, default 100,000, 0 skips it), printed and written
to the results.

Results (results.md, results.json, burst.png, the workers' logs) go to ``--out``/burst-<UTC time>/
(default bench/results/). The target of issue 9 is >= 400 msg/s with one worker.

    .venv/bin/python bench/burst.py                                   # 10,000 messages, 100 conversations
    .venv/bin/python bench/burst.py --messages 1000 --conversations 20  # a quick check
    .venv/bin/python bench/burst.py --wait-idle 120                   # first wait (<= 120 s) for a quiet machine
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.proc_cpu import CpuMeter, machine_busy_seconds, process_cpu_seconds, stack_pids  # noqa: E402
from bench.yardstick import YardstickResult, run_yardstick  # noqa: E402

logger = logging.getLogger("burst")

TARGET_MSGS_PER_S = 400.0
# A message's aggregate status in Cassandra, in lifecycle order.
ROUTED_OR_LATER = {"SENT", "DELIVERED", "READ", "FAILED"}
DELIVERED_OR_LATER = {"DELIVERED", "READ"}


# --------------------------------------------------------------------------- shared by burst, scaling and soak


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_describe() -> str:
    """Short HEAD commit, marked when the tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def run_meta(name: str, argv: Sequence[str] | None) -> dict[str, Any]:
    """Date, command, machine and code version for a results file."""
    started = dt.datetime.now(dt.UTC)
    args = list(argv if argv is not None else sys.argv[1:])
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "stamp": started.strftime("%Y%m%dT%H%M%SZ"),
        "command": " ".join([f".venv/bin/python bench/{name}.py", *args]),
        "machine": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Kafka, Cassandra, "
        "S3Proxy, Redis, the worker(s) and this script co-located on 127.0.0.1",
        "commit": git_describe(),
        "python": sys.version.split()[0],
        "loadavg_start": loadavg(),
        "inherited_env": {k: v for k, v in os.environ.items() if k.startswith("CHAT4ALL_")},
    }


def results_dir(out: Path, name: str, meta: Mapping[str, Any]) -> Path:
    """``out/<name>-<UTC time>/``, created."""
    path = out / f"{name}-{meta['stamp']}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats with one decimal, None as a dash."""

    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(path: Path, markdown: str, data: Mapping[str, Any]) -> None:
    (path / "results.md").write_text(markdown)
    (path / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def cpu_ms_per_message(
    used: Mapping[str, float | None], messages: int, own: Iterable[str]
) -> dict[str, float | None]:
    """CPU ms per message of each process, plus "other": machine busy time none of ``own`` used."""
    out: dict[str, float | None] = {
        k: (v * 1000 / messages if v is not None and messages else None) for k, v in used.items()
    }
    known = sum(used.get(k) or 0.0 for k in own)
    machine = used.get("machine")
    out["other"] = (max(0.0, machine - known) * 1000 / messages) if machine is not None and messages else None
    return out


def wait_quiet(*, limit_s: float, max_cores: float, window_s: float = 3.0) -> float:
    """Wait up to ``limit_s`` until the machine's busy CPU, less this process's, stays under ``max_cores``.

    It must stay under for ``window_s`` (other sessions share the cores); returns the last figure,
    in cores.
    """
    deadline = time.monotonic() + limit_s
    cores = math.inf
    while time.monotonic() < deadline:
        machine, own = machine_busy_seconds(), process_cpu_seconds(os.getpid()) or 0.0
        time.sleep(window_s)
        cores = (
            machine_busy_seconds() - machine - ((process_cpu_seconds(os.getpid()) or 0.0) - own)
        ) / window_s
        if cores <= max_cores:
            logger.info("machine quiet: %.2f cores busy", cores)
            return cores
    logger.warning(
        "machine still busy after %.0f s: %.2f cores busy by others; measuring anyway", limit_s, cores
    )
    return cores


def add_quiet_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for the machine to be quiet",
    )
    parser.add_argument(
        "--idle-cores",
        type=float,
        default=0.3,
        help="'quiet' for --wait-idle: cores busy outside this script (the stack's servers included)",
    )


def add_yardstick_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yardstick-messages",
        type=int,
        default=100_000,
        help="records of the yardstick (bench/yardstick.py) run before the measurement "
        "(default %(default)s); 0 skips it",
    )


def measure_yardstick(bootstrap: str, messages: int) -> YardstickResult | None:
    """The machine's yardstick (bench/yardstick.py's run_yardstick) with ``messages`` records, printed.

    None when ``messages`` is 0.
    """
    if messages <= 0:
        return None
    result = asyncio.run(run_yardstick(bootstrap, messages=messages))
    print(result.summary(), flush=True)
    return result


def yardstick_lines(yardstick: YardstickResult | None) -> list[str]:
    """The results.md line for the yardstick (as bench/step_load.py writes it), none if it was skipped."""
    return [f"Yardstick: {yardstick.summary()}.", ""] if yardstick is not None else []


def rss_mb(pid: int, field_name: str = "VmRSS") -> float | None:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM...) in MiB; None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def start_workers(
    pipeline: Any,
    count: int,
    *,
    log_dir: Path,
    ready_timeout: float = 180.0,
    env: Mapping[str, str] | None = None,
) -> list[Any]:
    """Start ``count`` `chat4all worker --role all` of ``pipeline``, logging to ``log_dir``.

    Returns when the group is settled (every worker healthy, no rebalance, the same assignment for 3 s).
    """
    from cli.harness.worker_process import WorkerProcess

    workers = []
    for i in range(count):
        w = WorkerProcess(
            app_id=pipeline.app_id,
            role="all",
            env={**pipeline.env, **(env or {})},
            log_path=log_dir / f"worker-{i + 1}.log",
        ).start()
        pipeline.workers.append(w)
        workers.append(w)
    for w in workers:
        w.wait_ready(timeout=ready_timeout)
    deadline = time.monotonic() + ready_timeout
    stable_since, last = time.monotonic(), None
    while time.monotonic() < deadline:
        healths = [w.health() for w in workers]
        state = tuple((h or {}).get("kafka", {}).get("assigned_partitions") for h in healths)
        settled = all(
            h
            and h.get("status") == "ok"
            and not h["kafka"].get("rebalancing")
            and h["kafka"].get("assigned_partitions", 0) > 0
            for h in healths
        )
        if not settled or state != last:
            stable_since, last = time.monotonic(), state
        elif time.monotonic() - stable_since >= 3.0:
            logger.info("%d worker(s) settled; assigned partitions %s", count, list(state))
            return workers
        time.sleep(0.5)
    raise TimeoutError(f"{count} workers not settled after {ready_timeout:.0f} s: {last}")


def check_alive(workers: Sequence[Any]) -> None:
    """Raise if a worker process has exited (a benchmark of a dead worker only measures its timeout)."""
    for w in workers:
        if w.proc is not None and w.proc.poll() is not None:
            raise RuntimeError(
                f"worker {w.proc.pid} exited with {w.proc.returncode}; log {w.log_path}:\n{w.log_tail()}"
            )


def stop_pipeline(pipeline: Any) -> None:
    """Stop the workers (SIGTERM), delete the run's topics, remove the workers' data dirs."""
    pipeline.close()
    for w in pipeline.workers:
        shutil.rmtree(w.data_dir, ignore_errors=True)


@dataclass
class PublishStats:
    """What a producer run did: times on this machine's clock (time.time())."""

    sent: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    last_ack: float = 0.0
    lag_max_s: float = 0.0  # paced only: how late the worst batch left against its schedule


async def produce(
    bootstrap: str,
    topic: str,
    count: int,
    make_event: Callable[[int], dict[str, Any]],
    *,
    rate: float | None = None,
    tick_s: float = 0.02,
    stats: PublishStats | None = None,
) -> PublishStats:
    """Produce ``count`` MessageEvents ``make_event(i)`` keyed by conversation id (acks=all).

    Each is stamped with ``ts_ms`` when it is handed to the producer. ``rate`` None: all at once;
    else paced at ``rate`` msg/s in ticks of ``tick_s``. ``stats`` (updated as it goes) lets a
    concurrent task watch progress.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    stats = stats if stats is not None else PublishStats()
    futures: list[asyncio.Future[Any]] = []
    try:
        t0 = stats.first_send = time.time()
        i = 0
        while i < count:
            now = time.time()
            due = count if rate is None else min(count, int((now - t0) * rate) + 1)
            if rate is not None and due > i:
                stats.lag_max_s = max(stats.lag_max_s, now - (t0 + i / rate))
            for n in range(i, due):
                event = make_event(n)
                event["ts_ms"] = int(time.time() * 1000)
                futures.append(
                    await producer.send(
                        topic, key=event["conversation_id"].encode(), value=json.dumps(event).encode()
                    )
                )
            i = max(i, due)
            stats.sent, stats.last_send = i, time.time()
            if rate is not None:
                for f in futures:
                    if f.done():
                        f.result()  # a failed send raises here, not only at the end
                futures = [f for f in futures if not f.done()]
                await asyncio.sleep(max(0.0, min(tick_s, t0 + i / rate - time.time())))
        await asyncio.gather(*futures)
        stats.last_ack = time.time()
    finally:
        await producer.stop()
    return stats


@dataclass
class Sample:
    """One poll of the run's conversations: seconds since the first publish and message counts."""

    t: float
    routed: int
    delivered: int
    read: int
    failed: int


@dataclass
class StatusPoller:
    """Counts the run's messages by aggregate status in Cassandra.

    A conversation whose every expected message is READ or FAILED is finished and not queried again
    (both are terminal).
    """

    session: Any
    expected: dict[str, int]  # conversation id -> messages published to it
    finished_rows: dict[str, list[Any]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._select = self.session.prepare(
            "SELECT status, ts, delivered_at, read_at FROM messages WHERE conversation_id = ?"
        )

    def poll(self, t0: float) -> Sample:
        from cassandra.concurrent import execute_concurrent_with_args

        pending = [c for c in self.expected if c not in self.finished_rows]
        results = execute_concurrent_with_args(
            self.session,
            self._select,
            [(uuid.UUID(c),) for c in pending],
            concurrency=32,
            raise_on_first_error=True,
        )
        routed = delivered = read = failed = 0
        for cid, (_ok, rows) in zip(pending, results, strict=True):
            rows = list(rows)
            statuses = [r.status for r in rows]
            if len(rows) >= self.expected[cid] and all(s in ("READ", "FAILED") for s in statuses):
                self.finished_rows[cid] = rows
                continue
            routed += sum(1 for s in statuses if s in ROUTED_OR_LATER)
            delivered += sum(1 for s in statuses if s in DELIVERED_OR_LATER)
            read += statuses.count("READ")
            failed += statuses.count("FAILED")
        for rows in self.finished_rows.values():
            routed += len(rows)
            delivered += sum(1 for r in rows if r.status in DELIVERED_OR_LATER)
            read += sum(1 for r in rows if r.status == "READ")
            failed += sum(1 for r in rows if r.status == "FAILED")
        sample = Sample(
            t=round(time.time() - t0, 3), routed=routed, delivered=delivered, read=read, failed=failed
        )
        self.samples.append(sample)
        return sample

    @property
    def done(self) -> bool:
        return len(self.finished_rows) == len(self.expected)

    def rows(self) -> list[Any]:
        return [r for rows in self.finished_rows.values() for r in rows]


def latencies_ms(rows: Iterable[Any]) -> tuple[list[float], list[float]]:
    """Latencies send -> DELIVERED and send -> READ in ms, from Cassandra's ts, delivered_at and read_at."""
    delivered, read = [], []
    for r in rows:
        if r.delivered_at is not None:
            delivered.append((r.delivered_at - r.ts).total_seconds() * 1000)
        if r.read_at is not None:
            read.append((r.read_at - r.ts).total_seconds() * 1000)
    return delivered, read


# --------------------------------------------------------------------------- the burst


@dataclass
class BurstResult:
    workers: int
    messages: int
    conversations: int
    read: int
    failed: int
    complete: bool
    publish_s: float  # first publish to the last broker ack
    elapsed_s: float  # first publish to the poll that saw the last READ (or the timeout)
    msgs_per_s: float
    first_read_s: float | None
    delivered_s: float | None  # first publish to the poll that saw every message DELIVERED or READ
    msgs_per_s_delivered: float | None
    delivered_ms: dict[str, float | None]
    read_ms: dict[str, float | None]
    cpu_s: dict[str, float | None]
    cpu_ms_per_msg: dict[str, float | None]
    worker_peak_rss_mb: list[float | None]
    assigned_partitions: list[int | None]
    loadavg: str
    other_cores: float | None  # busy CPU of the machine none of the measured processes used, in cores
    code: str
    samples: list[Sample]
    delivered_cdf_ms: list[float] = field(default_factory=list)
    read_cdf_ms: list[float] = field(default_factory=list)


def _quantiles(values: Sequence[float]) -> dict[str, float | None]:
    return {
        name: (round(v) if (v := percentile(values, q)) is not None else None)
        for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    }


def _cdf_points(values: Sequence[float], points: int = 200) -> list[float]:
    """``points`` evenly spaced quantiles of ``values`` (enough to draw a CDF)."""
    ordered = sorted(values)
    if not ordered:
        return []
    return [
        round(ordered[min(len(ordered) - 1, int(i * len(ordered) / points))], 1) for i in range(points)
    ] + [round(ordered[-1], 1)]


def run_burst(
    settings: Any,
    session: Any,
    *,
    workers: int,
    messages: int,
    conversations: int,
    timeout: float,
    poll_interval: float,
    log_dir: Path,
    name: str = "c4a-burst",
    wait_idle: float = 0.0,
    idle_cores: float = 0.3,
) -> BurstResult:
    """One burst on a pipeline of its own with ``workers`` workers; the pipeline is gone afterwards."""
    from cli.harness.isolation import IsolatedPipeline
    from cli.harness.seeding import events_for, setup_conversations

    code = git_describe()
    pipeline = IsolatedPipeline(settings, name=name)
    try:
        logger.info("app id %s: starting %d worker(s)", pipeline.app_id, workers)
        procs = start_workers(pipeline, workers, log_dir=log_dir)
        assigned = [(w.health() or {}).get("kafka", {}).get("assigned_partitions") for w in procs]
        convs = setup_conversations(session, conversations, channels={"whatsapp": "+5511999990000"})
        events = events_for(convs, messages, prefix="burst")
        expected: dict[str, int] = {}
        for e in events:
            expected[e["conversation_id"]] = expected.get(e["conversation_id"], 0) + 1
        poller = StatusPoller(session=session, expected=expected)
        if wait_idle > 0:
            wait_quiet(limit_s=wait_idle, max_cores=idle_cores + workers * 0.05)  # idle workers tick a little
        meter = CpuMeter(
            {
                **{f"worker-{i + 1}": w.proc.pid for i, w in enumerate(procs)},
                **stack_pids(settings.stack_dir),
                "bench": os.getpid(),
            }
        )
        before = meter.sample()
        logger.info("publishing %d messages to %s", messages, pipeline.topic("messages"))
        stats = asyncio.run(
            produce(settings.kafka_bootstrap, pipeline.topic("messages"), len(events), events.__getitem__)
        )
        t0 = stats.first_send
        logger.info("published in %.2f s; polling Cassandra", stats.last_ack - t0)
        done_at: float | None = None
        last_log = 0.0
        while time.time() - t0 < timeout:
            check_alive(procs)
            sample = poller.poll(t0)
            if sample.t - last_log >= 5:
                logger.info(
                    "%.0f s: routed %d, delivered %d, READ %d",
                    sample.t,
                    sample.routed,
                    sample.delivered,
                    sample.read,
                )
                last_log = sample.t
            if poller.done:
                done_at = time.time()
                break
            time.sleep(poll_interval)
        used = meter.since(before)
        end = done_at or time.time()
        rows = poller.rows()  # finished conversations only, if it timed out
        final = poller.samples[-1]
        delivered_ms, read_ms = latencies_ms(rows)
        first_read = next((s.t for s in poller.samples if s.read > 0), None)
        all_delivered = next((s.t for s in poller.samples if s.delivered >= messages), None)
        elapsed = end - t0
        worker_names = [f"worker-{i + 1}" for i in range(workers)]
        cpu_ms = cpu_ms_per_message(
            used,
            final.read or messages,
            own=[*worker_names, "kafka", "cassandra", "redis", "s3proxy", "bench"],
        )
        cpu_ms["workers"] = sum(cpu_ms.get(n) or 0.0 for n in worker_names)
        other_cores = (
            (cpu_ms["other"] * (final.read or messages) / 1000 / elapsed)
            if cpu_ms["other"] is not None
            else None
        )
        return BurstResult(
            workers=workers,
            messages=messages,
            conversations=conversations,
            read=final.read,
            failed=final.failed,
            complete=done_at is not None and final.read == messages,
            publish_s=round(stats.last_ack - t0, 2),
            elapsed_s=round(elapsed, 2),
            msgs_per_s=round(final.read / elapsed, 1),
            first_read_s=first_read,
            delivered_s=all_delivered,
            msgs_per_s_delivered=round(messages / all_delivered, 1) if all_delivered else None,
            delivered_ms=_quantiles(delivered_ms),
            read_ms=_quantiles(read_ms),
            cpu_s={k: (round(v, 2) if v is not None else None) for k, v in used.items()},
            cpu_ms_per_msg={k: (round(v, 3) if v is not None else None) for k, v in cpu_ms.items()},
            worker_peak_rss_mb=[rss_mb(w.proc.pid, "VmHWM") for w in procs],
            assigned_partitions=assigned,
            loadavg=loadavg(),
            other_cores=round(other_cores, 2) if other_cores is not None else None,
            code=code,
            samples=poller.samples,
            delivered_cdf_ms=_cdf_points(delivered_ms),
            read_cdf_ms=_cdf_points(read_ms),
        )
    finally:
        stop_pipeline(pipeline)


# --------------------------------------------------------------------------- output


def plot_burst(result: BurstResult, path: Path, *, title: str) -> Path | None:
    """Plot routed / DELIVERED / READ count over time (left) and the latency CDFs (right).

    The left plot has the 400 msg/s target line; the right one the CDFs of send -> DELIVERED and
    send -> READ.
    """
    from bench.plots import _pyplot

    plt = _pyplot()
    if plt is None or not result.samples:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    t = [s.t for s in result.samples]
    left.plot(t, [s.routed for s in result.samples], label="routed (row in Cassandra)")
    left.plot(t, [s.delivered for s in result.samples], label="DELIVERED or READ")
    left.plot(t, [s.read for s in result.samples], label="READ", linewidth=2)
    target_t = result.messages / TARGET_MSGS_PER_S
    left.plot(
        [0, target_t],
        [0, result.messages],
        linestyle=":",
        color="grey",
        label=f"{TARGET_MSGS_PER_S:g} msg/s from the first publish",
    )
    left.axvline(result.publish_s, color="grey", linewidth=0.8, linestyle="--", label="last publish acked")
    left.set_xlabel("seconds since the first publish")
    left.set_ylabel("messages")
    left.set_title(f"{result.messages} messages: {result.msgs_per_s:g} msg/s to READ", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    for values, label in (
        (result.delivered_cdf_ms, "send -> DELIVERED"),
        (result.read_cdf_ms, "send -> READ"),
    ):
        if values:
            right.plot(
                [v / 1000 for v in values], [i / (len(values) - 1) for i in range(len(values))], label=label
            )
    right.set_xlabel("seconds (Cassandra delivered_at / read_at - ts)")
    right.set_ylabel("fraction of messages")
    right.set_title("latency CDF", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


CPU_COLUMNS = ("workers", "kafka", "cassandra", "redis", "s3proxy", "bench", "other")


def render_markdown(
    meta: Mapping[str, Any], results: Sequence[BurstResult], yardstick: YardstickResult | None = None
) -> str:
    lines = [
        f"Burst, {meta['date']} — `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; code {meta['commit']}; load average {meta['loadavg_start']} at the start. "
        '"others\' cores": busy CPU of the machine that none of the measured processes used during the run '
        "(other sessions on this shared machine).",
        "",
    ]
    lines += yardstick_lines(yardstick)
    lines.append(
        markdown_table(
            [
                "workers",
                "messages",
                "READ",
                "failed",
                "publish s",
                "all DELIVERED s",
                "first READ s",
                "elapsed s",
                "msg/s to READ",
                f">= {TARGET_MSGS_PER_S:g}",
                "DELIVERED p50/p95/p99 ms",
                "READ p50/p99 ms",
                "others' cores",
                "loadavg",
            ],
            [
                [
                    r.workers,
                    r.messages,
                    r.read,
                    r.failed,
                    r.publish_s,
                    r.delivered_s,
                    r.first_read_s,
                    r.elapsed_s,
                    r.msgs_per_s,
                    "yes" if r.complete and r.msgs_per_s >= TARGET_MSGS_PER_S else "no",
                    f"{r.delivered_ms['p50']} / {r.delivered_ms['p95']} / {r.delivered_ms['p99']}",
                    f"{r.read_ms['p50']} / {r.read_ms['p99']}",
                    r.other_cores,
                    r.loadavg,
                ]
                for r in results
            ],
        )
    )
    lines += [
        "",
        "CPU ms per message from the first publish to the last READ (idle included; `bench` is this "
        "script: producer and Cassandra polling; `other` is busy CPU of the machine none of these used):",
        "",
    ]
    lines.append(
        markdown_table(
            [
                "workers",
                *(("worker(s)" if c == "workers" else c) for c in CPU_COLUMNS),
                "worker peak RSS MiB",
            ],
            [
                [
                    r.workers,
                    *(r.cpu_ms_per_msg.get(c) for c in CPU_COLUMNS),
                    " / ".join(f"{v:.0f}" for v in r.worker_peak_rss_mb if v is not None),
                ]
                for r in results
            ],
        )
    )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="workers --role all (the target is for 1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds from the first publish")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    add_quiet_args(parser)
    add_yardstick_arg(parser)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.messages <= 0 or args.conversations <= 0 or args.workers <= 0:
        parser.error("--messages, --conversations and --workers must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.ERROR)  # the driver warns about USE <keyspace>
    from chat4all.cassandra import connect
    from chat4all.settings import get_settings

    meta = run_meta("burst", argv)
    out = results_dir(args.out, "burst", meta)
    settings = get_settings()
    yardstick = measure_yardstick(settings.kafka_bootstrap, args.yardstick_messages)
    session = connect(settings)
    try:
        result = run_burst(
            settings,
            session,
            workers=args.workers,
            messages=args.messages,
            conversations=args.conversations,
            timeout=args.timeout,
            poll_interval=args.poll_interval,
            log_dir=out,
            wait_idle=args.wait_idle,
            idle_cores=args.idle_cores,
        )
    finally:
        session.cluster.shutdown()
    meta["loadavg_end"] = loadavg()
    table = render_markdown(meta, [result], yardstick)
    write_results(
        out,
        table,
        {
            "meta": meta,
            "yardstick": asdict(yardstick) if yardstick else None,
            "target_msgs_per_s": TARGET_MSGS_PER_S,
            "result": asdict(result),
        },
    )
    plot = plot_burst(
        result, out / "burst.png", title=f"Burst, {meta['date']}, {args.workers} worker(s) ({meta['commit']})"
    )
    print(table)
    print(f"Results in {out}" + (f" (plot {plot.name})" if plot else ""))
    return 0 if result.complete else 1


if __name__ == "__main__":
    sys.exit(main())
