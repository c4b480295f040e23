"""Read a (small) topic's records from its beginning to its current end, without a consumer group."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord


async def read_topic(
    *, bootstrap: str, topic: str, partitions: Iterable[int], timeout: float
) -> list[ConsumerRecord]:
    """Every record of ``partitions`` of ``topic`` up to the end offsets read first, oldest first per partition.

    Gives up after ``timeout`` seconds with what it has read (a partition whose last records
    are gone from the broker would otherwise keep it waiting).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while remaining and loop.time() < deadline:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                records += batch
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()
