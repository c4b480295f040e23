"""Fixes for five record-loss paths of faust 0.15.3 / aiokafka 0.14 at partition takeover.

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

4. Records dropped below a read offset a seek left behind. When recovery pauses the
   changelog partitions it has read, faust's set of active partitions can be empty while a
   fetch is waiting in the consumer thread; aiokafka then returns the buffered records of
   every partition, and faust discards those of partitions it has not resumed yet, with
   their fetch positions already past them (seen in a DEBUG run: `messages:1` jumping from
   60 to 100 right after "Done reading from changelog topics"). The seek to committed
   offsets puts them back, but it seeks the partitions one by one over hundreds of ms with
   the streams already resumed: a partition delivered from its advanced position first,
   and when its seek came, faust dropped the re-fetched records below its read offset as
   read already. They never were: a worker joining mid-flow lost offsets 14-16 and 21-24
   of two `messages` partitions in one CI run. aiokafka's seeks and resets now note where
   they put the position, and faust's read offset drops to it at the partition's next
   record, so everything from a seek on is delivered (again).

5. Commits past events still in flight. The agents ack events out of order (their I/O
   runs in the background, streams/inflight.py), and faust commits after the first run of
   acked offsets: past one unacked offset (its guard is off by one), and past any number
   when no committed offset is known, as at every revoke (the revoke drops the partition's
   committed offset, then waits for the streams and commits). A worker killed after such a
   commit loses the events below it. At at-least-once a commit now covers only offsets
   acked without a hole from the committed offset (or, never committed, from the first
   offset aiokafka's reset to the earliest found), and a jump in the delivered offsets is
   not counted as acked.

All rely on private attributes of the pinned versions (setup.cfg); ``install`` checks
them and fails the worker's start-up loudly if an upgrade moved them. The private names
checked are read from this module's own code, so a patch cannot touch one the check misses.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import sys
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import OffsetResetStrategy
from aiokafka.consumer.subscription_state import (
    Assignment,
    Subscription,
    SubscriptionState,
    TopicPartitionState,
)
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.queues import FlowControlEvent

logger = logging.getLogger(__name__)

_original_seek_to_committed = AIOKafkaConsumer.seek_to_committed
_original_getmany = faust_consumer.Consumer.getmany
_original_init = faust_consumer.Consumer.__init__
_original_state_seek = TopicPartitionState.seek
_original_state_reset_to = TopicPartitionState.reset_to
_original_new_offset = faust_consumer.Consumer._new_offset
_original_add_gap = faust_consumer.Consumer._add_gap


def resume_clearing_only_after_suspend(self: FlowControlEvent) -> None:
    """FlowControlEvent.resume that clears the managed queues only if the flow was suspended."""
    was_suspended = self._suspend.is_set()
    self._suspend.clear()
    self._resume.set()
    if was_suspended:
        self.clear()


def partition_state(consumer: Any, tp: TP) -> TopicPartitionState | None:
    """The aiokafka state of ``tp`` (fetch position, seeks) in faust ``consumer``; None if unassigned."""
    aiokafka_consumer = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    if aiokafka_consumer is None:
        return None
    subscription = aiokafka_consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    return assignment.state_value(tp) if assignment is not None else None


def position_of(state: TopicPartitionState | None) -> int | None:
    """The fetch position a partition state holds; None if there is no state or it awaits a reset."""
    if state is None or not state.has_valid_position:
        return None
    return state.position


def fetch_position(consumer: Any, tp: TP) -> int | None:
    """The aiokafka fetch position of ``tp`` in faust ``consumer``; None if unassigned or awaiting a reset."""
    return position_of(partition_state(consumer, tp))


# On aiokafka's TopicPartitionState, both set in the consumer thread: where seeks and resets
# put the position (fix 4; appended there, taken on the loop: deque appends and pops are
# atomic), and the partition's first offset once a reset to the earliest found it (fix 5).
REWINDS = "chat4all_rewinds"
LOG_START = "chat4all_log_start"


def note_rewind(state: TopicPartitionState, position: int, *, log_start: bool = False) -> None:
    """Remember that a seek or reset put ``state``'s position at ``position`` (the partition's first offset if ``log_start``)."""
    rewinds = state.__dict__.get(REWINDS)
    if rewinds is None:
        rewinds = state.__dict__.setdefault(REWINDS, deque())
    rewinds.append(position)
    if log_start:
        state.__dict__[LOG_START] = position


def log_start_of(state: TopicPartitionState | None) -> int | None:
    """The partition's first offset, if a reset to the earliest has found it for ``state``."""
    return state.__dict__.get(LOG_START) if state is not None else None


def take_rewind(state: TopicPartitionState | None) -> int | None:
    """The lowest position a seek or reset gave ``state`` since the last call; None if none did."""
    rewinds = state.__dict__.get(REWINDS) if state is not None else None
    lowest = None
    while rewinds:
        try:
            position = rewinds.popleft()
        except IndexError:  # taken meanwhile: only this loop takes
            break
        lowest = position if lowest is None else min(lowest, position)
    return lowest


def is_stale(position: int | None, offset: int) -> bool:
    """A fetched record is stale when a seek put the fetch position at or before it (it will be fetched again)."""
    return position is None or offset >= position


async def current_records(
    records: AsyncIterator[tuple[TP, Any]],
    position: Callable[[TP], int | None],
    *,
    on_stale: Callable[[TP], None] | None = None,
) -> AsyncIterator[tuple[TP, Any]]:
    """Pass on the (tp, message) pairs of a fetched batch that no seek has made stale."""
    async for tp, message in records:
        if is_stale(position(tp), message.offset):
            logger.debug("skipping %s:%s@%s fetched before a seek", tp.topic, tp.partition, message.offset)
            if on_stale is not None:
                on_stale(tp)
            continue
        yield tp, message


class ReadOffsets(defaultdict):
    """faust's per-partition read offsets, never beyond what aiokafka's fetch position allows.

    Seeks set the read offset to the new position (allowed: equal); records delivered from a
    current batch are below the position (allowed); a record from a batch made stale by a
    seek is at or after the new position and is ignored. ``dict.update`` (perform_seek)
    bypasses this on purpose: it sets committed offsets after a seek.

    Read back after a seek or reset put the fetch position below it (the lowest such position
    since the last read, from ``state``), it reads as that position (fix 4): faust would drop
    the re-fetched records below the read offset as read already, though some of them may
    never have been delivered. faust's own perform_seek lowers it too, but only once every
    partition has been sought, hundreds of ms later.
    """

    def __init__(self, state: Callable[[TP], TopicPartitionState | None]) -> None:
        super().__init__(lambda: None)
        self._state = state

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        position = position_of(self._state(tp))
        if offset is not None and (position is None or offset > position):
            logger.debug("read offset of %s:%s not moved to stale %s", tp.topic, tp.partition, offset)
            return
        super().__setitem__(tp, offset)

    def __getitem__(self, tp: TP) -> int | None:
        offset = super().__getitem__(tp)
        rewound = take_rewind(self._state(tp))
        if rewound is not None and offset is not None and rewound < offset:
            super().__setitem__(tp, rewound)
            return rewound
        return offset


def contiguous_commit(acked: list[int], base: int) -> tuple[int | None, list[int]]:
    """The offset to commit when ``base`` is the next uncommitted one, and the acked offsets still to keep.

    Only offsets acked without a hole from ``base`` count: None while ``base`` itself is
    unacked. Offsets below ``base`` (committed before) are dropped.
    """
    acked.sort()
    next_offset = base
    for offset in acked:
        if offset < next_offset:
            continue
        if offset > next_offset:
            break
        next_offset += 1
    keep = [offset for offset in acked if offset >= next_offset]
    return (next_offset if next_offset > base else None), keep


def install(*, is_source_topic: Callable[[str], bool], on_stale: Callable[[TP], None] | None = None) -> None:
    """Patch aiokafka's seek_to_committed, faust's Consumer and mode's flow control once per process (idempotent)."""
    if getattr(AIOKafkaConsumer.seek_to_committed, "_chat4all_patched", False):
        return
    check_private_api()

    async def seek_to_committed_or_beginning(self: AIOKafkaConsumer, *partitions):  # type: ignore[no-untyped-def]
        committed = await _original_seek_to_committed(self, *partitions)
        never = [tp for tp, offset in committed.items() if not offset and is_source_topic(tp.topic)]
        if never:
            logger.info(
                "rewinding %d never-committed partitions to their beginning: %s",
                len(never),
                ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(never)),
            )
            await self.seek_to_beginning(*never)
        return committed

    def getmany_current(self: faust_consumer.Consumer, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        return current_records(
            _original_getmany(self, timeout), lambda tp: fetch_position(self, tp), on_stale=on_stale
        )

    def init_with_guarded_read_offsets(self: faust_consumer.Consumer, *args: Any, **kwargs: Any) -> None:
        _original_init(self, *args, **kwargs)
        self._read_offset = ReadOffsets(lambda tp: partition_state(self, tp))

    def new_offset_without_holes(self: faust_consumer.Consumer, tp: TP) -> int | None:
        if self.in_transaction:  # transaction markers leave real holes: faust's gap bookkeeping
            return _original_new_offset(self, tp)
        acked = self._acked[tp]
        if not acked:
            return None
        base = self._committed_offset[tp]
        if base is None:  # never committed: from its first offset, once a reset has found it
            base = log_start_of(partition_state(self, tp))
        if base is None:  # no commit and no reset to the earliest seen: nothing to start from
            return None
        offset, keep = contiguous_commit(acked, base)
        if offset is not None:
            self._acked_index[tp].difference_update(range(base, offset))
            acked[:] = keep
        return offset

    async def add_gap_only_in_transactions(
        self: faust_consumer.Consumer, tp: TP, offset_from: int, offset_to: int
    ) -> None:
        if self.in_transaction:
            await _original_add_gap(self, tp, offset_from, offset_to)
            return
        # Without transactions a source topic has no holes. faust sees one when a seek's read
        # offset lands below records delivered just before it (fix 4): those are acked
        # themselves; any that were not delivered hold the commit below them.
        logger.debug(
            "offsets %d-%d of %s:%s not counted as acked (faust's gap)",
            offset_from,
            offset_to - 1,
            tp.topic,
            tp.partition,
        )

    def seek_noting_rewind(self: TopicPartitionState, position: int) -> None:
        _original_state_seek(self, position)
        note_rewind(self, position)

    def reset_to_noting_rewind(self: TopicPartitionState, position: int) -> None:
        # A reset by strategy (fix 1's seek to the beginning, or auto_offset_reset) rather
        # than to a committed offset: at the earliest, ``position`` is the partition's first offset.
        earliest = self.awaiting_reset and self.reset_strategy == OffsetResetStrategy.EARLIEST
        _original_state_reset_to(self, position)
        note_rewind(self, position, log_start=earliest)

    seek_to_committed_or_beginning._chat4all_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumer.seek_to_committed = seek_to_committed_or_beginning  # type: ignore[method-assign]
    faust_consumer.Consumer.getmany = getmany_current  # type: ignore[method-assign]
    faust_consumer.Consumer.__init__ = init_with_guarded_read_offsets  # type: ignore[method-assign]
    FlowControlEvent.resume = resume_clearing_only_after_suspend  # type: ignore[method-assign]
    TopicPartitionState.seek = seek_noting_rewind  # type: ignore[method-assign]
    TopicPartitionState.reset_to = reset_to_noting_rewind  # type: ignore[method-assign]
    faust_consumer.Consumer._new_offset = new_offset_without_holes  # type: ignore[method-assign]
    faust_consumer.Consumer._add_gap = add_gap_only_in_transactions  # type: ignore[method-assign]


def private_owners() -> dict[str, type]:
    """Each private name the patches touch, with the pinned class that defines it."""
    return {
        "_read_offset": faust_consumer.Consumer,  # ReadOffsets replaces it
        "_thread": faust_consumer.ThreadDelegateConsumer,  # the consumer's ConsumerThread
        "_consumer": faust_aiokafka.AIOKafkaConsumerThread,  # that thread's AIOKafkaConsumer
        "_subscription": AIOKafkaConsumer,  # the fetch positions
        "_new_offset": faust_consumer.Consumer,  # commits only offsets acked without a hole
        "_add_gap": faust_consumer.Consumer,
        "_acked": faust_consumer.Consumer,
        "_acked_index": faust_consumer.Consumer,
        "_committed_offset": faust_consumer.Consumer,
        "_suspend": FlowControlEvent,
        "_resume": FlowControlEvent,
    }


def private_names_touched(source: str | None = None) -> set[str]:
    """The private attribute names this module's code reads or writes on other libraries' objects.

    Every ``obj._name`` and ``getattr/hasattr(obj, "_name")`` counts, except names this module
    defines itself (``self._x`` in its own classes, attributes it sets on its own functions).
    """
    tree = ast.parse(source if source is not None else inspect.getsource(sys.modules[__name__]))
    functions = {
        node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            own |= {
                a.attr
                for a in ast.walk(node)
                if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "self"
            }
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in functions
        ):
            own.add(node.attr)
    touched: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            touched.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            touched.add(node.args[1].value)
    return {name for name in touched - own if name.startswith("_") and not name.startswith("__")}


def _defines(cls: type, name: str) -> bool:
    """``cls`` has ``name`` as a class attribute, or the module of it (or of a base) assigns ``self.<name>``."""
    if hasattr(cls, name):
        return True
    # A text search, not a parse: a parse of faust's and aiokafka's consumer modules costs ~70 ms of start-up.
    assignment = re.compile(rf"\bself\.{re.escape(name)}\s*(:[^=\n]+)?=(?!=)")
    for klass in cls.__mro__:
        try:
            source = inspect.getsource(sys.modules[klass.__module__])
        except (KeyError, OSError, TypeError):  # builtins, or no source
            continue
        if assignment.search(source):
            return True
    return False


def check_private_api(*, owners: Mapping[str, type] | None = None, touched: set[str] | None = None) -> None:
    """Raise RuntimeError unless every private name the patches touch is where the pinned libraries keep it."""
    owners = private_owners() if owners is None else owners
    touched = private_names_touched() if touched is None else touched
    missing = [
        f"{name} (no owner in streams.takeover.private_owners)" for name in sorted(touched - owners.keys())
    ]
    missing += [
        f"{owners[name].__name__}.{name}"
        for name in sorted(touched & owners.keys())
        if not _defines(owners[name], name)
    ]
    # The public names the patches reach through those private ones.
    missing += [
        f"{cls.__name__}.{name}"
        for cls, name in (
            (SubscriptionState, "subscription"),
            (Subscription, "assignment"),
            (Assignment, "state_value"),
            (TopicPartitionState, "has_valid_position"),
            (TopicPartitionState, "position"),
            (TopicPartitionState, "seek"),
            (TopicPartitionState, "reset_to"),
            (TopicPartitionState, "awaiting_reset"),
            (TopicPartitionState, "reset_strategy"),
            (FlowControlEvent, "clear"),
        )
        if not hasattr(cls, name)
    ]
    if missing:
        raise RuntimeError(
            f"faust/aiokafka/mode changed a private API ({', '.join(missing)}); see streams/takeover.py"
        )
