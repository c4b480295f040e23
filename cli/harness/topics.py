"""Kafka topics for isolated runs: create and delete a prefix's topics, start a consumer group at their end, count records."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from chat4all import topic_names as names
from chat4all.settings import Settings
from chat4all.topic_names import topic_name, topic_specs
from chat4all.topic_reading import read_topic
from chat4all.wire import DELIVERY_CHANNELS
from cli.stack.bootstrap import create_topics

# Topics a worker consumes: a fresh app id is started at their end (see seed_group_at_end).
CONSUMED_TOPICS = [names.MESSAGES, names.STATUS_UPDATES] + [
    names.outbound_topic(c) for c in DELIVERY_CHANNELS
]
_TOPICS_READY_TIMEOUT = 30.0


async def _seed(settings: Settings, group_id: str, topics: list[str]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in (consumer.partitions_for_topic(t) or range(settings.topic_partitions))
        ]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: off for tp, off in ends.items()})
    finally:
        await consumer.stop()


def seed_group_at_end(settings: Settings, group_id: str, *, topics: list[str] = CONSUMED_TOPICS) -> None:
    """Commit the current end offsets of ``topics`` for ``group_id`` (before its first worker starts).

    A new app id would otherwise replay every message other sessions ever published.
    """
    asyncio.run(_seed(settings, group_id, topics))


def create_prefixed_topics(settings: Settings, prefix: str) -> None:
    """The platform's topics under ``prefix`` (created as `chat4all stack bootstrap` does), then ready in the metadata."""
    isolated = settings.model_copy(update={"topic_prefix": prefix})
    create_topics(isolated)
    asyncio.run(_wait_for_topics(isolated))


async def _wait_for_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        specs = {topic_name(settings, s.name): s for s in topic_specs(settings)}
        deadline = time.monotonic() + _TOPICS_READY_TIMEOUT
        while time.monotonic() < deadline:
            described = await admin.describe_topics(list(specs))
            if all(
                not d.get("error_code") and len(d.get("partitions") or []) == specs[d["topic"]].partitions
                for d in described
            ):
                return
            await asyncio.sleep(0.3)
        raise TimeoutError(f"topics with prefix {settings.topic_prefix} not ready")
    finally:
        await admin.close()


async def delete_topics(settings: Settings, prefixes: list[str]) -> None:
    """Delete every topic whose name starts with one of ``prefixes`` (a run's own topics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if any(t.startswith(p) for p in prefixes)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def _topic_size(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def topic_size(settings: Settings, topic: str) -> int:
    """Records ever written to a (fresh, uncompacted) topic: the sum of its partitions' end offsets."""
    return asyncio.run(_topic_size(settings, topic))


def topic_records(settings: Settings, topic: str) -> list[tuple[int, int, bytes | None]]:
    """Every record of a (small) topic as (partition, offset, value), for a failing test's diagnosis."""
    records = asyncio.run(
        read_topic(
            bootstrap=settings.kafka_bootstrap,
            topic=topic,
            partitions=range(settings.topic_partitions),
            timeout=_TOPICS_READY_TIMEOUT,
        )
    )
    return [(r.partition, r.offset, r.value) for r in records]


async def group_committed(
    settings: Settings, group_id: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """What ``group_id`` has committed on ``tps`` (one request; a partition without a commit is left out or -1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in committed.items()}


def committed_offsets(settings: Settings, group_id: str, topic: str) -> dict[int, int | None]:
    """The offsets ``group_id`` has committed on each partition of ``topic`` (None: none yet)."""
    tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    committed = asyncio.run(group_committed(settings, group_id, tps))
    return {tp.partition: (offset if (offset := committed.get(tp, -1)) >= 0 else None) for tp in tps}
