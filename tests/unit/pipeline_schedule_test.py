"""The durable schedule's bucket layout over a plain dict (the faust table in production)."""

from __future__ import annotations

from tables.schedule import INDEX_KEY, DurableSchedule


def test_entries_fire_in_due_order_once_their_bucket_has_passed():
    table: dict = {}
    s = DurableSchedule(table=table, bucket_ms=100)
    s.add_many([{"due": 1250, "id": "b"}, {"due": 1010, "id": "a"}, {"due": 1299, "id": "c"}])
    assert table[INDEX_KEY] == [10, 12] and s.next_due_ms() == 1100
    assert s.due(1099) == []
    fired = s.due(1100)
    assert [e["id"] for _, es in fired for e in es] == ["a"]
    s.remove([b for b, _ in fired])
    assert [e["id"] for _, es in s.due(5000) for e in es] == ["b", "c"]
    s.remove([12])
    assert s.next_due_ms() is None and set(table) == {INDEX_KEY}


def test_adding_to_an_existing_bucket_keeps_earlier_entries():
    table: dict = {}
    s = DurableSchedule(table=table, bucket_ms=100)
    s.add_many([{"due": 510, "id": 1}])
    s.add_many([{"due": 590, "id": 2}])
    assert [e["id"] for e in table["b:5"]] == [1, 2] and table[INDEX_KEY] == [5]


def test_namespaces_keep_two_partitions_schedules_apart() -> None:
    # One table, two partitions' schedules with entries in the same bucket: removing one
    # partition's bucket must leave the other's entries (and keys) alone.
    table: dict = {}
    p3 = DurableSchedule(table=table, bucket_ms=100, namespace="p3:")
    p5 = DurableSchedule(table=table, bucket_ms=100, namespace="p5:")
    p3.add_many([{"due": 550, "id": "a"}])
    p5.add_many([{"due": 560, "id": "b"}])
    assert set(table) == {"p3:idx", "p3:b:5", "p5:idx", "p5:b:5"}
    p3.remove([bucket for bucket, _ in p3.due(1000)])
    assert [e["id"] for _, es in p5.due(1000) for e in es] == ["b"]
    assert p3.next_due_ms() is None and p5.next_due_ms() == 600
