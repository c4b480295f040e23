"""Key placement of the inspector: each table's own partition for a key, not faust's hash of the JSON key."""

from __future__ import annotations

import json

import pytest
from aiokafka.partitioner import DefaultPartitioner

from chat4all.producing import CachedPartitioner
from streams.inspector.placement import (
    Placement,
    UnknownPartition,
    key_partition,
    partition_of,
    placement_of,
)

MESSAGE_ID = "01a232c4-1b79-743e-a1d8-319364ef2a81"
CONVERSATION_ID = "01a232c4-1b6d-73bd-8ccc-1d6fb539a8a5"


def test_a_message_keyed_table_is_in_the_partition_the_producers_choose_for_the_message_id() -> None:
    partitions = list(range(12))
    expected = CachedPartitioner()(MESSAGE_ID.encode(), partitions, partitions)
    assert expected == DefaultPartitioner()(MESSAGE_ID.encode(), partitions, partitions)
    for table in ("receipt-states", "receipt-finals"):
        assert placement_of(table) is Placement.MESSAGE
        assert partition_of(table, MESSAGE_ID, partitions=12) == expected


def test_hashing_the_json_key_as_faust_does_would_point_elsewhere_for_most_keys() -> None:
    keys = [f"01a232c4-1b79-743e-a1d8-{i:012d}" for i in range(50)]
    differ = sum(
        key_partition(k, 12) != DefaultPartitioner()(json.dumps(k).encode(), list(range(12)), list(range(12)))
        for k in keys
    )
    assert differ > 30


def test_the_dedup_table_is_placed_by_the_conversation_not_the_message() -> None:
    assert placement_of("router-routed") is Placement.CONVERSATION
    got = partition_of("router-routed", MESSAGE_ID, partitions=12, conversation_id=CONVERSATION_ID)
    assert got == key_partition(CONVERSATION_ID, 12)
    with pytest.raises(UnknownPartition):
        partition_of("router-routed", MESSAGE_ID, partitions=12)


def test_schedule_keys_carry_their_partition() -> None:
    assert placement_of("whatsapp-schedule") is Placement.CARRIED
    assert partition_of("whatsapp-schedule", "p7:b:17961480426", partitions=12) == 7
    for bad in ("b:17961480426", "p12:b:1", "px:b:1"):
        with pytest.raises(UnknownPartition):
            partition_of("whatsapp-schedule", bad, partitions=12)


def test_a_windowed_key_is_placed_by_its_inner_key() -> None:
    windowed = (MESSAGE_ID, (1796148000.0, 1796148060.0))
    assert partition_of("receipt-states", windowed, partitions=12) == key_partition(MESSAGE_ID, 12)
    assert partition_of("whatsapp-schedule", ("p3:b:5", (0.0, 60.0)), partitions=12) == 3
