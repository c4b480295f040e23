"""The machine's yardstick: raw aiokafka pass-through on the local broker, no Chat4All code involved.

Produces ``--messages`` small records (``--size`` bytes, keyed, ``--linger-ms`` linger, acks=all)
to a topic of its own with ``--partitions`` partitions, then consumes them all in a fresh consumer
group; the topic is deleted afterwards. Prints produce msg/s, consume msg/s (from the consumer's
start, the group join included) and the pass-through msg/s (messages / (produce time + consume
time)). What the platform reaches per message is best read against this figure, measured
in the same hour on the same broker.

    .venv/bin/python bench/yardstick.py [--messages 100000] [--size 100] [--partitions 12] [--linger-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class YardstickResult:
    """One pass-through run; rates in messages per second, times in seconds."""

    messages: int
    size: int
    partitions: int
    linger_ms: int
    produce_seconds: float
    join_seconds: float  # consumer start to the first record (group join, first fetch)
    consume_seconds: float  # first record to the last
    produce_rate: float
    consume_rate: float
    passthrough_rate: float

    def summary(self) -> str:
        return (
            f"aiokafka pass-through: {self.messages} x {self.size} B over {self.partitions} partitions, "
            f"linger {self.linger_ms} ms: produce {self.produce_rate:,.0f} msg/s, consume {self.consume_rate:,.0f} "
            f"msg/s (group join {self.join_seconds:.2f} s included), pass-through {self.passthrough_rate:,.0f} msg/s"
        )


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            described = await admin.describe_topics([topic])
            if (
                described
                and not described[0].get("error_code")
                and len(described[0].get("partitions") or []) == partitions
            ):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"topic {topic} not ready after 30 s")
    finally:
        await admin.close()


async def _delete_topic(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, *, messages: int, size: int, linger_ms: int) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        payload = b"x" * size
        start = time.perf_counter()
        pending = []
        for i in range(messages):
            # send() only queues the record (it waits when the accumulator is full); the acks are awaited in bulk.
            pending.append(await producer.send(topic, key=str(i % 1024).encode(), value=payload))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.perf_counter() - start
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, *, messages: int, timeout: float) -> tuple[float, float]:
    """(seconds to join and see the first record, seconds from it to the last record)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"yardstick-{uuid.uuid4().hex[:10]}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        max_poll_records=10_000,
    )
    start = time.perf_counter()
    await consumer.start()
    try:
        seen, first = 0, None
        while seen < messages:
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"consumed {seen} of {messages} records in {timeout:.0f} s")
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got = sum(len(records) for records in batches.values())
            if got and first is None:
                first = time.perf_counter()
            seen += got
        end = time.perf_counter()
        assert first is not None
        return first - start, end - first
    finally:
        await consumer.stop()


async def run_yardstick(
    bootstrap: str,
    *,
    messages: int = 100_000,
    size: int = 100,
    partitions: int = 12,
    linger_ms: int = 5,
    timeout: float = 120.0,
) -> YardstickResult:
    """Produce then consume ``messages`` records on a topic of its own (deleted afterwards)."""
    topic = f"yardstick-{uuid.uuid4().hex[:10]}"
    await _create_topic(bootstrap, topic, partitions)
    try:
        produce_s = await _produce(bootstrap, topic, messages=messages, size=size, linger_ms=linger_ms)
        join_s, consume_s = await _consume(bootstrap, topic, messages=messages, timeout=timeout)
    finally:
        try:
            await _delete_topic(bootstrap, topic)
        except Exception as exc:  # cleanup only
            logger.warning("could not delete %s: %s", topic, exc)
    result = YardstickResult(
        messages=messages,
        size=size,
        partitions=partitions,
        linger_ms=linger_ms,
        produce_seconds=produce_s,
        join_seconds=join_s,
        consume_seconds=consume_s,
        produce_rate=messages / produce_s,
        consume_rate=messages / (join_s + consume_s),
        passthrough_rate=messages / (produce_s + join_s + consume_s),
    )
    logger.info("%s", result.summary())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap", default=None, help="Kafka bootstrap (default: CHAT4ALL_KAFKA_HOST:PORT)"
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100, help="value bytes per record")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.bootstrap is None:
        from chat4all.settings import get_settings

        args.bootstrap = get_settings().kafka_bootstrap
    result = asyncio.run(
        run_yardstick(
            args.bootstrap,
            messages=args.messages,
            size=args.size,
            partitions=args.partitions,
            linger_ms=args.linger_ms,
        )
    )
    print(json.dumps(asdict(result), indent=2) if args.json else result.summary())


if __name__ == "__main__":
    main()
