"""Produce requests per broker (chat4all/producing.py), against the real Kafka: fewer requests, same records, same order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.producer.sender import Sender

from chat4all import producing
from chat4all.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 12


@pytest.fixture
def unpatched() -> Iterator[None]:
    producing.uninstall()
    yield
    producing.uninstall()


async def _produce(bootstrap: str, topic: str) -> int:
    """Three records per partition, one every 4 ms, linger 300 ms, all acked; returns the produce requests sent."""
    requests = 0
    original = Sender._send_produce_req

    async def counted(self: Any, node_id: int, batches: Any) -> Any:
        nonlocal requests
        requests += 1
        return await original(self, node_id, batches)

    Sender._send_produce_req = counted  # type: ignore[method-assign]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=300)
    await producer.start()
    try:
        futures = []
        for n in range(3 * PARTITIONS):
            futures.append(await producer.send(topic, f"r{n}".encode(), partition=n % PARTITIONS))
            await asyncio.sleep(0.004)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
        Sender._send_produce_req = original  # type: ignore[method-assign]
    return requests


async def _consume(bootstrap: str, topic: str, count: int) -> dict[int, list[bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: dict[int, list[bytes]] = {}
    try:
        seen = 0
        while seen < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 20)
            for tp, records in batch.items():
                got.setdefault(tp.partition, []).extend(r.value for r in records)
                seen += len(records)
    finally:
        await consumer.stop()
    return got


async def _scenario(bootstrap: str, *, patched: bool) -> tuple[int, dict[int, list[bytes]]]:
    topic = f"test-producing-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    if patched:
        producing.install()
    try:
        requests = await _produce(bootstrap, topic)
    finally:
        producing.uninstall()
    return requests, await _consume(bootstrap, topic, 3 * PARTITIONS)


def test_a_ready_batch_takes_every_waiting_batch_of_its_broker(stack: Settings, unpatched: None) -> None:
    patched_requests, patched_records = asyncio.run(_scenario(stack.kafka_bootstrap, patched=True))
    plain_requests, plain_records = asyncio.run(_scenario(stack.kafka_bootstrap, patched=False))
    expected = {p: [f"r{p + PARTITIONS * k}".encode() for k in range(3)] for p in range(PARTITIONS)}
    # Every record arrives once, in its partition's order, either way.
    assert patched_records == expected
    assert plain_records == expected
    # aiokafka alone sends a request whenever one partition's linger ends (staggered over
    # the 144 ms of sends); drained per broker, the first ready batch takes them all.
    assert patched_requests <= 2, patched_requests
    assert plain_requests >= 4, plain_requests


async def _keyed(bootstrap: str) -> tuple[dict[bytes, int], dict[bytes, int]]:
    """Where 40 keyed records land with 12 partitions, then again after the topic grows to 16."""
    topic = f"test-partitions-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producing.install()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, partitioner=producing.CachedPartitioner())
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        await producer.start()
        keys = [f"key-{n}".encode() for n in range(40)]
        before = {k: (await (await producer.send(topic, b"v", key=k))).partition for k in keys}
        await admin.create_partitions({topic: NewPartitions(total_count=16)})
        for _ in range(50):
            await producer.client.force_metadata_update()
            if len(producer.client.cluster.partitions_for_topic(topic) or ()) == 16:
                break
            await asyncio.sleep(0.2)
        after = {k: (await (await producer.send(topic, b"v", key=k))).partition for k in keys}
    finally:
        await producer.stop()
        await admin.close()
        producing.uninstall()
    return before, after


def test_keyed_records_land_where_the_java_compatible_partitioner_puts_them(
    stack: Settings, unpatched: None
) -> None:
    before, after = asyncio.run(_keyed(stack.kafka_bootstrap))
    assert before == {k: (murmur2(k) & 0x7FFFFFFF) % PARTITIONS for k in before}
    # The partition cache followed the metadata update: keys now spread over 16 partitions.
    assert after == {k: (murmur2(k) & 0x7FFFFFFF) % 16 for k in after}
    assert max(after.values()) >= PARTITIONS
