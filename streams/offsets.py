"""Fix for a record-loss path at partition takeover: rewind never-committed source partitions to their start.

faust drops the rest of a fetched batch when a rebalance starts (the fetch position has
already moved past it) and relies on "seek to committed offsets" after the rebalance to
fetch those records again. aiokafka's ``seek_to_committed`` only seeks when a committed
offset > 0 exists, so a partition whose previous owner died before its first commit kept
the advanced position: the dropped records were never processed (seen with SIGKILL of a
worker shortly after it started; tests/pipeline/test_failover.py). For such partitions of
our own source topics we seek to the beginning, which is what auto_offset_reset=earliest
promises; the replays are absorbed by the idempotent effects (dedup table, upserts,
forward-only receipts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

logger = logging.getLogger(__name__)

_original_seek_to_committed = AIOKafkaConsumer.seek_to_committed


def install(*, is_source_topic: Callable[[str], bool]) -> None:
    """Patch AIOKafkaConsumer.seek_to_committed once for this process (idempotent)."""
    if getattr(AIOKafkaConsumer.seek_to_committed, "_chat4all_patched", False):
        return

    async def seek_to_committed_or_beginning(self: AIOKafkaConsumer, *partitions):  # type: ignore[no-untyped-def]
        committed = await _original_seek_to_committed(self, *partitions)
        never = [tp for tp, offset in committed.items() if not offset and is_source_topic(tp.topic)]
        if never:
            logger.info("rewinding %d never-committed partitions to their beginning: %s", len(never),
                        ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(never)))
            await self.seek_to_beginning(*never)
        return committed

    seek_to_committed_or_beginning._chat4all_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumer.seek_to_committed = seek_to_committed_or_beginning  # type: ignore[method-assign]
