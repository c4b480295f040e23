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
