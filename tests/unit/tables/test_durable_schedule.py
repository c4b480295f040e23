"""The durable schedule's bucket layout over a plain dict (the faust table in production)."""

from __future__ import annotations

from tables.durable_schedule import DurableSchedule, scan_index


def test_entries_fire_in_due_order_once_their_bucket_has_passed():
    table: dict = {}
    s = DurableSchedule(table=table, bucket_ms=100)
    s.add_many([{"due": 1250, "id": "b"}, {"due": 1010, "id": "a"}, {"due": 1299, "id": "c"}])
    assert s.index == [10, 12] and s.next_due_ms() == 1100
    assert s.due(1099) == []
    fired = s.due(1100)
    assert [e["id"] for _, es in fired for e in es] == ["a"]
    s.remove([b for b, _ in fired])
    assert [e["id"] for _, es in s.due(5000) for e in es] == ["b", "c"]
    s.remove([12])
    assert s.next_due_ms() is None and table == {}


def test_adding_to_an_existing_bucket_keeps_earlier_entries():
    table: dict = {}
    s = DurableSchedule(table=table, bucket_ms=100)
    s.add_many([{"due": 510, "id": 1}])
    s.add_many([{"due": 590, "id": 2}])
    assert [e["id"] for e in table["b:5"]] == [1, 2] and s.index == [5]


def test_namespaces_keep_two_partitions_schedules_apart() -> None:
    # One table, two partitions' schedules with entries in the same bucket: removing one
    # partition's bucket must leave the other's entries (and keys) alone.
    table: dict = {}
    p3 = DurableSchedule(table=table, bucket_ms=100, namespace="p3:")
    p5 = DurableSchedule(table=table, bucket_ms=100, namespace="p5:")
    p3.add_many([{"due": 550, "id": "a"}])
    p5.add_many([{"due": 560, "id": "b"}])
    assert set(table) == {"p3:b:5", "p5:b:5"}
    p3.remove([bucket for bucket, _ in p3.due(1000)])
    assert [e["id"] for _, es in p5.due(1000) for e in es] == ["b"]
    assert p3.next_due_ms() is None and p5.next_due_ms() == 600


def test_the_index_is_rebuilt_from_the_stored_buckets_of_one_namespace() -> None:
    # A worker that takes a partition over (or restarts) has no index in memory: the table's keys are the truth.
    table: dict = {}
    DurableSchedule(table=table, bucket_ms=100, namespace="p3:").add_many(
        [{"due": 950, "id": "x"}, {"due": 310, "id": "y"}]
    )
    DurableSchedule(table=table, bucket_ms=100, namespace="p31:").add_many([{"due": 420, "id": "z"}])
    table["p3:idx"] = [3, 9]  # an index key written by an earlier version is not a bucket
    assert scan_index(table, namespace="p3:") == [3, 9]
    again = DurableSchedule(table=table, bucket_ms=100, namespace="p3:")
    assert [e["id"] for _, es in again.due(2000) for e in es] == ["y", "x"]
