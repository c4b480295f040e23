"""Reads what the API published: events appended to a topic after a probe was opened."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from chat4all.settings import Settings


class TopicProbe:
    """Remembers a topic's end offsets, then collects the records appended after them."""

    def __init__(self, *, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicProbe:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap, enable_auto_commit=False
        )
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        if not partitions:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        ends = await self._consumer.end_offsets(tps)
        for tp, offset in ends.items():
            self._consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def collect(
        self, predicate: Any, *, count: int = 1, timeout: float = 10.0
    ) -> list[tuple[str, dict]]:
        """(key, value) of matching records, waiting until ``count`` arrived or ``timeout`` passed."""
        assert self._consumer is not None
        found: list[tuple[str, dict]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    value = json.loads(record.value)
                    if predicate(value):
                        found.append((record.key.decode() if record.key else "", value))
        return found

    async def settle(self, seconds: float = 1.0) -> None:
        await asyncio.sleep(seconds)
