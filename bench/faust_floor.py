"""The floor under the worker's cost: faust's own CPU per consumed event, per table write and per produced record.

The pipeline's worker does, per message, a fixed amount of faust work: it consumes 4 events
(`messages`, `<channel>-outbound`, DELIVERED and READ on `status-updates`), writes about 7
table records (changelog + RocksDB) and produces about 5 records (outbound, two status
updates, two notifications), besides its 4 Cassandra writes. This script measures what each
of those primitives costs in isolation, on the same broker, with an agent that does nothing
else, so that the worker's CPU per message can be set against the least it could be.

Each variant runs a minimal faust worker in a process of its own (12 partitions, RocksDB
store, manual acks as the pipeline's agents do, producer linger 10 ms; the worker's fetch
settings, produce patches and RocksDB options, so their settings apply here too), offers
``--rate`` events/s for ``--seconds`` and reads the worker's CPU (utime + stime, idle
included) from /proc from the first event to the last commit:

- ``consume``: the agent acks each event;
- ``table``: and writes one table entry per event;
- ``produce``: and sends one record per event (not awaited, acked at once);
- ``produce-raw`` (not run by default): the same through aiokafka's producer, not a faust topic.

The marginal cost of a table write or a produced record is the variant minus ``consume``.

    .venv/bin/python bench/faust_floor.py                      # 1200 events/s (300 msg/s x 4), 60 s each
    .venv/bin/python bench/faust_floor.py --rate 1200 --seconds 60 --variants consume,table,produce
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from bench.burst import add_yardstick_arg, measure_yardstick, run_meta, yardstick_lines  # noqa: E402
from bench.proc_cpu import process_cpu_seconds  # noqa: E402
from chat4all.settings import get_settings  # noqa: E402

VARIANTS = ("consume", "table", "produce")
PARTITIONS = 12


def run_worker(variant: str, prefix: str, datadir: str) -> None:
    """The child process: a minimal faust worker of one variant (runs until killed)."""
    import faust

    from chat4all import producing
    from streams import fetching
    from tables.options import install_memory_budget

    settings = get_settings()
    # As the worker has them (agents/worker.py): the produce patches, the RocksDB budget and WAL setting.
    producing.install(drain_by_broker=settings.producer_drain_by_broker)
    install_memory_budget(settings)
    fetching.install(
        min_bytes=settings.consumer_fetch_min_bytes, max_wait_ms=settings.consumer_fetch_max_wait_ms
    )
    app = faust.App(
        f"{prefix}-app",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="rocksdb://",
        datadir=datadir,
        topic_partitions=PARTITIONS,
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=256 * 1024,
    )
    app.producer.buffer.max_messages = settings.producer_buffer_max_messages
    source = app.topic(f"{prefix}-in", value_serializer="raw", partitions=PARTITIONS)
    sink = app.topic(f"{prefix}-out", value_serializer="raw", partitions=PARTITIONS)
    table = app.Table("floor", default=int, key_type=str, value_type=int, partitions=PARTITIONS)
    sink_name = sink.get_topic_name()

    def raw_producer() -> Any:
        return app.producer._ensure_producer()

    @app.agent(source)
    async def floor(stream: Any) -> None:
        async for event in stream.noack().events():
            if variant == "table":
                table[event.key.decode()] = event.message.offset
            elif variant == "produce":
                await sink.send(key=event.key, value=event.value)
            elif variant == "produce-raw":
                await raw_producer().send(sink_name, event.value, key=event.key)
            event.ack()

    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


async def _topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(f"{prefix}-{n}", PARTITIONS, 1) for n in ("in", "out")]
            + [
                NewTopic(
                    f"{prefix}-app-floor-changelog",
                    PARTITIONS,
                    1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        await admin.close()


async def _committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except Exception:  # group not there yet
        return 0
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def _wait_committed(bootstrap: str, group: str, topic: str, total: int, timeout: float) -> float:
    # One admin connection for the whole wait: a new one per poll would load the broker four times a second.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await _committed(admin, group, topic) >= total:
                return time.monotonic()
            await asyncio.sleep(0.25)
    finally:
        await admin.close()
    raise TimeoutError(f"{group} did not commit {total} records of {topic} within {timeout} s")


async def _publish(producer: AIOKafkaProducer, topic: str, *, count: int, rate: float, start: int) -> None:
    value = json.dumps({"message_id": str(uuid.uuid4()), "content": "x" * 120}).encode()
    t0 = time.monotonic()
    step = max(1, int(rate / 50))
    for i in range(0, count, step):
        for j in range(i, min(count, i + step)):
            await producer.send(topic, key=f"k{start + j}".encode(), value=value)
        await asyncio.sleep(max(0.0, t0 + (i + step) / rate - time.monotonic()))
    await producer.flush()


async def measure(variant: str, *, rate: float, seconds: float, timeout: float) -> dict[str, Any]:
    settings = get_settings()
    bootstrap = settings.kafka_bootstrap
    prefix = f"floor-{variant}-{uuid.uuid4().hex[:8]}"
    await _topics(bootstrap, prefix)
    datadir = tempfile.mkdtemp(prefix=f"c4a-{prefix}-")
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", variant, "--prefix", prefix, "--datadir", datadir],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        topic, group = f"{prefix}-in", f"{prefix}-app"
        warm = int(rate * 5)
        await _publish(producer, topic, count=warm, rate=rate, start=0)
        await _wait_committed(bootstrap, group, topic, warm, timeout)
        await asyncio.sleep(3.0)  # past a commit, so the step starts from a settled worker
        count = int(rate * seconds)
        cpu0, t0 = process_cpu_seconds(child.pid), time.monotonic()
        await _publish(producer, topic, count=count, rate=rate, start=warm)
        t1 = await _wait_committed(bootstrap, group, topic, warm + count, timeout)
        cpu1 = process_cpu_seconds(child.pid)
        assert cpu0 is not None and cpu1 is not None, "the worker died"
        return {
            "variant": variant,
            "events": count,
            "seconds": round(t1 - t0, 1),
            "cpu_s": round(cpu1 - cpu0, 2),
            "us_per_event": round((cpu1 - cpu0) / count * 1e6, 1),
        }
    finally:
        await producer.stop()
        child.kill()
        child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1200.0, help="events/s offered (300 msg/s x 4 events)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--datadir", default=None, help=argparse.SUPPRESS)
    add_yardstick_arg(parser)
    args = parser.parse_args()
    if args.child:
        run_worker(args.child, args.prefix, args.datadir)
        return 0
    logging.basicConfig(level=logging.WARNING)
    meta = run_meta("faust_floor", sys.argv[1:])
    yardstick = measure_yardstick(get_settings().kafka_bootstrap, args.yardstick_messages)
    rows = [
        asyncio.run(measure(v, rate=args.rate, seconds=args.seconds, timeout=args.timeout))
        for v in args.variants.split(",")
    ]
    base = next((r["us_per_event"] for r in rows if r["variant"] == "consume"), None)
    print("\n".join(yardstick_lines(yardstick)))
    print(f"{meta['date']}: rate {args.rate:.0f} events/s, {args.seconds:.0f} s per variant")
    print("| variant | events | s | worker CPU s | µs per event | marginal µs |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        marginal = "" if base is None or r["variant"] == "consume" else f"{r['us_per_event'] - base:.1f}"
        print(
            f"| {r['variant']} | {r['events']} | {r['seconds']} | {r['cpu_s']} | {r['us_per_event']} | {marginal} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
