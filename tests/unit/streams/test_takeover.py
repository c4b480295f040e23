"""Takeover guards of streams/takeover.py: stale records skipped, read offset bounded by the fetch position, queues kept while the flow runs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest
from aiokafka.consumer.fetcher import OffsetResetStrategy
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.types import TP

from streams.takeover import (
    ReadOffsets,
    check_private_api,
    contiguous_commit,
    current_records,
    install,
    is_stale,
    note_rewind,
    private_names_touched,
    private_owners,
)

install(is_source_topic=lambda topic: True)  # as build_worker does

A = TP("t", 0)
B = TP("t", 1)


def _records(*pairs):
    async def gen():
        for tp, offset in pairs:
            yield tp, SimpleNamespace(offset=offset)

    return gen()


async def _collect(agen):
    return [(tp.partition, m.offset) async for tp, m in agen]


def test_a_record_at_or_after_the_fetch_position_is_stale():
    assert not is_stale(10, 9)
    assert is_stale(10, 10) and is_stale(10, 11)
    assert is_stale(None, 0)  # awaiting a reset (seek to beginning) or no longer assigned


def test_records_of_a_batch_made_stale_by_a_seek_are_skipped_and_counted():
    positions = {A: 3, B: 50}  # A was rewound to 3 after the batch 0..5 was fetched; B was not
    skipped: list[TP] = []
    out = asyncio.run(
        _collect(
            current_records(
                _records((A, 2), (B, 40), (A, 3), (A, 4), (B, 41)), positions.get, on_stale=skipped.append
            )
        )
    )
    assert out == [(0, 2), (1, 40), (1, 41)]
    assert skipped == [A, A]


def _state(position: int) -> SimpleNamespace:
    """A partition state as aiokafka's TopicPartitionState shows it (a valid fetch position)."""
    return SimpleNamespace(has_valid_position=True, position=position)


def test_read_offset_moves_with_delivered_records_and_seeks_but_not_past_the_position():
    states = {A: _state(10)}
    offsets = ReadOffsets(states.get)
    offsets[A] = 7  # a delivered record
    assert offsets[A] == 7
    offsets[A] = 10  # a seek to the position itself
    assert offsets[A] == 10
    offsets[A] = 12  # a record of a batch fetched before a seek back to 10
    assert offsets[A] == 10
    offsets[A] = None  # a seek to the beginning
    assert offsets[A] is None
    assert offsets[B] is None  # unknown partitions read as None, like faust's defaultdict
    offsets.update({B: 99})  # perform_seek's committed offsets go in as they are
    assert offsets[B] == 99
    states.clear()  # unassigned or awaiting a reset: no record can move it
    offsets[A] = 3
    assert offsets[A] is None


def test_a_read_offset_above_where_a_seek_put_the_position_drops_to_it():
    # Delivered up to 20 from a position advanced past records faust discarded (14-19 never
    # delivered); then the seek to the committed 14 and the re-fetch (position 21 again by
    # the time they are delivered): faust drops re-fetched records below the read offset.
    state = _state(21)
    offsets = ReadOffsets({A: state}.get)
    super(ReadOffsets, offsets).__setitem__(A, 20)
    note_rewind(state, 14)
    assert offsets[A] == 14
    assert all(offset >= offsets[A] for offset in range(14, 21))  # faust's test: all delivered again
    offsets[A] = 16
    assert offsets[A] == 16  # the seek is taken once
    note_rewind(state, 18)  # a seek above the read offset changes nothing
    assert offsets[A] == 16


def test_aiokafkas_seeks_lower_a_faust_consumers_read_offset_at_the_next_record():
    async def scenario() -> list[int | None]:
        consumer = faust.App("takeover-rewind-unit", broker="kafka://127.0.0.1:1").consumer  # never started
        subscription = SubscriptionState()  # aiokafka's own, as the consumer thread holds it
        kafka_tp = TopicPartition(A.topic, A.partition)
        subscription.assign_from_user({kafka_tp})
        subscription.seek(kafka_tp, 21)
        consumer._thread._consumer = SimpleNamespace(_subscription=subscription)
        seen = [consumer._read_offset[A]]
        consumer._read_offset[A] = 20
        seen.append(consumer._read_offset[A])  # the seek to 21 was above it: nothing to re-deliver
        subscription.seek(kafka_tp, 14)  # seek_to_committed, in the consumer thread
        subscription.subscription.assignment.state_value(kafka_tp).consumed_to(21)  # the re-fetch
        seen.append(consumer._read_offset[A])
        return seen

    assert asyncio.run(scenario()) == [None, 20, 14]


def test_a_faust_consumer_skips_records_a_seek_made_stale_and_bounds_its_read_offset():
    async def scenario() -> tuple[list[int], int | None, int | None]:
        consumer = faust.App("takeover-unit", broker="kafka://127.0.0.1:1").consumer  # built, never started
        assert isinstance(consumer._read_offset, ReadOffsets)
        # aiokafka's own subscription state, its fetch position for A rewound to 3 by a seek...
        subscription = SubscriptionState()
        subscription.assign_from_user({TopicPartition(A.topic, A.partition)})
        subscription.seek(TopicPartition(A.topic, A.partition), 3)
        consumer._thread._consumer = SimpleNamespace(_subscription=subscription, highwater=lambda tp: 6)
        # ...after the batch 0..5 had been fetched.
        batch = [
            ConsumerRecord(A.topic, A.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())
            for offset in range(6)
        ]

        async def wait_next_records(timeout: float):
            return {A: batch}, {A}

        consumer._wait_next_records = wait_next_records
        delivered = [message.offset async for _, message in consumer.getmany(timeout=0)]
        consumer._read_offset[A] = 5  # a stale record cannot move the read offset past the position
        stale = consumer._read_offset[A]
        consumer._read_offset[A] = 2
        return delivered, stale, consumer._read_offset[A]

    assert asyncio.run(scenario()) == ([0, 1, 2], None, 2)


def test_only_offsets_acked_without_a_hole_from_the_next_uncommitted_one_count():
    assert contiguous_commit([12, 10, 11, 15], 10) == (13, [15])
    # 10 still in flight (acks come back out of order): nothing may be committed yet.
    assert contiguous_commit([11, 12], 10) == (None, [11, 12])
    assert contiguous_commit([3, 4, 5, 9], 5) == (6, [9])  # 3 and 4 were committed before
    assert contiguous_commit([0, 1, 2], 0) == (3, [])


def _consumer(*, committed: int | None, acked: list[int]):
    consumer = faust.App("takeover-commit-unit", broker="kafka://127.0.0.1:1").consumer  # never started
    consumer._committed_offset[A] = committed
    for offset in acked:
        consumer._acked[A].append(offset)
        consumer._acked_index[A].add(offset)
    return consumer


def test_a_faust_consumer_does_not_commit_past_an_event_still_in_flight():
    # faust 0.15.3 would commit 13 here (its guard lets a hole of one offset through), so a
    # worker killed before 10 is acked loses it.
    consumer = _consumer(committed=10, acked=[11, 12])
    assert consumer._new_offset(A) is None
    consumer._acked[A].append(10)
    consumer._acked_index[A].add(10)
    assert consumer._new_offset(A) == 13
    assert consumer._acked[A] == [] and not consumer._acked_index[A] & {10, 11, 12}


def test_a_never_committed_partition_commits_from_nowhere_but_its_first_offset():
    # No commit and no rewind seen: faust would commit after any run of acks (2, 3 -> 4).
    assert _consumer(committed=None, acked=[2, 3])._new_offset(A) is None


def test_a_never_committed_partition_commits_from_the_first_offset_a_reset_found():
    async def scenario() -> list[int | None]:
        subscription = SubscriptionState()
        kafka_tp = TopicPartition(A.topic, A.partition)
        subscription.assign_from_user({kafka_tp})
        state = subscription.subscription.assignment.state_value(kafka_tp)
        state.await_reset(OffsetResetStrategy.EARLIEST)  # fix 1's seek to the beginning
        state.reset_to(5)  # the log starts at 5 (retention deleted 0-4)
        seen = []
        for acked in ([6, 7], [5, 6, 7]):
            consumer = _consumer(committed=None, acked=acked)
            consumer._thread._consumer = SimpleNamespace(_subscription=subscription)
            seen.append(consumer._new_offset(A))
        return seen

    assert asyncio.run(scenario()) == [None, 8]


def test_a_skipped_range_is_not_counted_as_acked():
    async def scenario() -> int | None:
        consumer = _consumer(committed=10, acked=[10])
        await consumer._add_gap(A, 11, 15)  # faust's fetcher saw 15 after 10: 11-14 never delivered
        consumer._acked[A].append(15)
        return consumer._new_offset(A)

    assert asyncio.run(scenario()) == 11


def test_the_private_names_checked_are_those_the_code_touches():
    touched = private_names_touched()
    assert touched >= {"_read_offset", "_thread", "_consumer", "_subscription", "_suspend", "_resume"}
    assert "_position" not in touched and "_chat4all_patched" not in touched  # this module's own
    assert touched <= private_owners().keys()
    check_private_api()  # the pinned versions have them all


def test_a_private_name_the_code_touches_without_an_owner_fails_the_check():
    owners = {name: cls for name, cls in private_owners().items() if name != "_subscription"}
    with pytest.raises(RuntimeError, match=r"_subscription \(no owner"):
        check_private_api(owners=owners)


def test_a_private_attribute_a_library_renamed_fails_the_check():
    class Consumer:
        def __init__(self) -> None:
            self._read_offsets = {}  # renamed upstream

    with pytest.raises(RuntimeError, match=r"Consumer\._read_offset\b"):
        check_private_api(owners={**private_owners(), "_read_offset": Consumer})


def test_new_private_names_in_the_code_are_found():
    source = (
        "def patch(consumer):\n"
        "    consumer._fetcher._records.clear()\n"
        "    return getattr(consumer, '_coordinator', None)\n"
        "patch._done = True\n"
        "class Guard:\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
    )
    assert private_names_touched(source) == {"_fetcher", "_records", "_coordinator"}


def test_resuming_a_running_flow_keeps_queued_records_and_resuming_after_a_suspend_clears_them():
    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    async def scenario() -> tuple[int, int]:
        flow = FlowControlEvent()
        queue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()
        await queue.put("queued after the final seek")
        flow.resume()  # faust's end of recovery: the flow was running already
        kept = queue.qsize()
        flow.suspend()  # a rebalance
        flow.resume()
        return kept, queue.qsize()

    assert asyncio.run(scenario()) == (1, 0)
