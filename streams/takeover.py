"""Fixes for three record-loss paths of faust 0.15.3 / aiokafka 0.14 at partition takeover.

1. Never-committed partitions. faust drops the rest of a fetched batch when a rebalance
   starts (the fetch position has already moved past it) and relies on "seek to committed
   offsets" after the rebalance to fetch those records again. aiokafka's
   ``seek_to_committed`` only seeks when a committed offset > 0 exists, so a partition whose
   previous owner died before its first commit kept the advanced position and the dropped
   records were never processed. For such partitions of our own source topics we seek to
   the beginning, which is what auto_offset_reset=earliest promises; the replays are
   absorbed by the idempotent effects (dedup table, upserts, forward-only receipts).

2. Stale batches. faust's fetcher task pulls a batch out of aiokafka and then delivers it
   record by record, awaiting the stream between records. When table recovery seeks a
   partition meanwhile (``perform_seek``, run twice per recovery), the rest of that batch
   is stale: aiokafka will fetch those offsets again from the new position. faust still
   delivers them and moves its read offset (``Consumer._read_offset``) to them, so the
   re-fetched records arrive below the read offset and faust drops them ("DROPPED MESSAGE"
   in its dev log), while the stale copies were cleared from the stream buffers when the
   flow resumed. The records were never processed and the next commit went past them
   (seen: 334-594 drops per SIGKILL failover run; tests/pipeline/test_failover.py). We
   deliver a record only if aiokafka's position for its partition is beyond it: a record
   at or after the position will be fetched again, so skipping it loses nothing. And the
   read offset may only move to an offset the position has reached, so a record that was
   in flight across a seek cannot push it ahead again.

3. Queues cleared after the final seek. At the end of a recovery faust resumes the stream
   partitions, seeks them to their committed offsets one by one (hundreds of ms with many
   partitions) while the flow is already running, and then calls
   ``app.flow_control.resume()``, which clears every agent's queue even though the flow
   was not suspended. Records fetched and queued after their partition's seek were thrown
   away with aiokafka's position already past them: never processed until another
   rebalance (seen: instagram-outbound offsets 1-40 of a taken-over partition, receipts
   stuck at SENT). Queues are now cleared when the flow resumes from a suspension (as after
   a rebalance's revoke, which also clears them itself), not when it was running already;
   whatever the queues hold then is in sequence from the seek, and a record queued twice
   is absorbed by the idempotent effects.

All rely on private attributes of the pinned versions (setup.cfg); ``install`` checks
them and fails the worker's start-up loudly if an upgrade moved them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport import consumer as faust_consumer
from faust.types import TP
from mode.utils.queues import FlowControlEvent

logger = logging.getLogger(__name__)

_original_seek_to_committed = AIOKafkaConsumer.seek_to_committed
_original_getmany = faust_consumer.Consumer.getmany
_original_init = faust_consumer.Consumer.__init__


def resume_clearing_only_after_suspend(self: FlowControlEvent) -> None:
    """FlowControlEvent.resume that clears the managed queues only if the flow was suspended."""
    was_suspended = self._suspend.is_set()
    self._suspend.clear()
    self._resume.set()
    if was_suspended:
        self.clear()


def fetch_position(consumer: Any, tp: TP) -> int | None:
    """aiokafka's fetch position for ``tp`` in faust ``consumer``; None if unassigned or awaiting a reset."""
    aiokafka_consumer = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if aiokafka_consumer is None:
        return None
    subscription = aiokafka_consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    state = assignment.state_value(tp) if assignment is not None else None
    if state is None or not state.has_valid_position:
        return None
    return state.position


def is_stale(position: int | None, offset: int) -> bool:
    """A fetched record is stale when a seek put the fetch position at or before it (it will be fetched again)."""
    return position is None or offset >= position


async def current_records(records: AsyncIterator[tuple[TP, Any]], position: Callable[[TP], int | None], *,
                          on_stale: Callable[[TP], None] | None = None) -> AsyncIterator[tuple[TP, Any]]:
    """Pass on the (tp, message) pairs of a fetched batch that no seek has made stale."""
    async for tp, message in records:
        if is_stale(position(tp), message.offset):
            logger.debug("skipping %s:%s@%s fetched before a seek", tp.topic, tp.partition, message.offset)
            if on_stale is not None:
                on_stale(tp)
            continue
        yield tp, message


class ReadOffsets(defaultdict):
    """faust's per-partition read offsets, refusing to move past what aiokafka has fetched.

    Seeks set the read offset to the new position (allowed: equal); records delivered from a
    current batch are below the position (allowed); a record from a batch made stale by a
    seek is at or after the new position and is ignored. ``dict.update`` (perform_seek)
    bypasses this on purpose: it sets committed offsets after a seek.
    """

    def __init__(self, position: Callable[[TP], int | None]) -> None:
        super().__init__(lambda: None)
        self._position = position

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        position = self._position(tp)
        if offset is not None and (position is None or offset > position):
            logger.debug("read offset of %s:%s not moved to stale %s", tp.topic, tp.partition, offset)
            return
        super().__setitem__(tp, offset)


def install(*, is_source_topic: Callable[[str], bool], on_stale: Callable[[TP], None] | None = None) -> None:
    """Patch aiokafka's seek_to_committed, faust's Consumer and mode's flow control once per process (idempotent)."""
    if getattr(AIOKafkaConsumer.seek_to_committed, "_chat4all_patched", False):
        return
    _check_private_api()

    async def seek_to_committed_or_beginning(self: AIOKafkaConsumer, *partitions):  # type: ignore[no-untyped-def]
        committed = await _original_seek_to_committed(self, *partitions)
        never = [tp for tp, offset in committed.items() if not offset and is_source_topic(tp.topic)]
        if never:
            logger.info("rewinding %d never-committed partitions to their beginning: %s", len(never),
                        ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(never)))
            await self.seek_to_beginning(*never)
        return committed

    def getmany_current(self: faust_consumer.Consumer, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        return current_records(_original_getmany(self, timeout), lambda tp: fetch_position(self, tp), on_stale=on_stale)

    def init_with_guarded_read_offsets(self: faust_consumer.Consumer, *args: Any, **kwargs: Any) -> None:
        _original_init(self, *args, **kwargs)
        self._read_offset = ReadOffsets(lambda tp: fetch_position(self, tp))

    seek_to_committed_or_beginning._chat4all_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumer.seek_to_committed = seek_to_committed_or_beginning  # type: ignore[method-assign]
    faust_consumer.Consumer.getmany = getmany_current  # type: ignore[method-assign]
    faust_consumer.Consumer.__init__ = init_with_guarded_read_offsets  # type: ignore[method-assign]
    FlowControlEvent.resume = resume_clearing_only_after_suspend  # type: ignore[method-assign]


def _check_private_api() -> None:
    """The attributes the patches read must exist in the installed aiokafka and mode."""
    from aiokafka.consumer.subscription_state import Assignment, SubscriptionState, TopicPartitionState

    missing = [name for cls, name in ((SubscriptionState, "subscription"), (Assignment, "state_value"),
                                      (TopicPartitionState, "has_valid_position"), (TopicPartitionState, "position"))
               if not hasattr(cls, name)]
    probe = FlowControlEvent()
    missing += [f"FlowControlEvent.{name}" for name in ("_suspend", "_resume", "clear") if not hasattr(probe, name)]
    if missing:
        raise RuntimeError(f"aiokafka/mode changed a private API ({', '.join(missing)}); see streams/takeover.py")
