"""Table values as earlier versions wrote them, recovered from a changelog and read by today's agents."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from tables.scheduled_receipts import read_scheduled_receipt, scheduled_receipt
from tests.unit.pipeline_helpers import RecordedSends, new_id, status_update, unit_worker

NOW = 1_800_000_000_000


def recover(table: Any, records: dict[str, Any], *, partition: int) -> None:
    """Write ``records`` into the table's store as faust's changelog recovery does: the bytes as they were produced."""
    serializers = table.app.serializers
    tp = TP(table.changelog_topic.get_topic_name(), partition)
    batch = [
        SimpleNamespace(
            message=SimpleNamespace(
                tp=tp,
                partition=partition,
                offset=offset,
                key=serializers.dumps_key(table.key_type, key, serializer=table.key_serializer),
                value=serializers.dumps_value(table.value_type, value, serializer=table.value_serializer),
            )
        )
        for offset, (key, value) in enumerate(records.items())
    ]
    table.apply_changelog_batch(batch)


def v1_schedule_entry(
    *, due: int, status: str, mid: str, cid: str, ts: int, rid: str, sid: str, keys: list[str]
) -> dict[str, Any]:
    """A `<channel>-schedule` entry in version 1, as ChannelWorker._entry wrote it."""
    return {"due": due, "st": status, "m": mid, "c": cid, "t": ts, "r": rid, "s": sid, "k": keys}


def v2_schedule_entry(
    *, due: int, status: str, mid: str, cid: str, ts: int, rid: str, sid: str, keys: list[str]
) -> dict[str, Any]:
    """A `<channel>-schedule` entry in version 2, as written before entries carried a traceparent."""
    return {
        "v": 2,
        "due": due,
        "st": status,
        "mid": mid,
        "cid": cid,
        "ts": ts,
        "rid": rid,
        "sid": sid,
        "k": keys,
    }


def v3_schedule_entry(
    *, due: int, status: str, mid: str, cid: str, ts: int, rid: str, sid: str, keys: list[str]
) -> dict[str, Any]:
    """Today's entry, as a worker with tracing off writes it (no traceparent)."""
    return dict(
        scheduled_receipt(
            due_ms=due,
            status=status,
            message_id=mid,
            conversation_id=cid,
            ts_ms=ts,
            recipient_id=rid,
            sender_id=sid,
            receipt_keys=keys,
        )
    )


def test_version_1_and_2_schedule_entries_read_in_todays_shape() -> None:
    fields = {
        "due": 5,
        "status": "DELIVERED",
        "mid": "m",
        "cid": "c",
        "ts": 1,
        "rid": "r",
        "sid": "s",
        "keys": ["r:whatsapp"],
    }
    assert read_scheduled_receipt(v1_schedule_entry(**fields)) == v3_schedule_entry(**fields)
    # Version 3 is version 2 plus an optional traceparent: a version 2 entry reads as it is.
    v2 = read_scheduled_receipt(v2_schedule_entry(**fields))
    assert v2 == v2_schedule_entry(**fields) and "tp" not in v2
    assert read_scheduled_receipt(v3_schedule_entry(**fields)) == v3_schedule_entry(**fields)


@pytest.fixture
def connector_env(monkeypatch):
    clock = {"now": NOW}
    worker = unit_worker("connectors", clock=lambda: clock["now"])
    sends = RecordedSends().install(monkeypatch, worker.ctx.topics, sender=worker.ctx.sender)
    return worker, worker.connectors.channels["whatsapp"], sends, clock


def _tick(now: int) -> bytes:
    return json.dumps({"__tick__": now}).encode()


@pytest.mark.parametrize(
    "shape",
    [v1_schedule_entry, v2_schedule_entry, v3_schedule_entry],
    ids=["version 1", "version 2", "version 3"],
)
async def test_recovered_schedule_entries_fire_their_receipts_then_schedule_read(
    connector_env, shape, monkeypatch
):
    app_worker, worker, sends, clock = connector_env
    # This worker owns partition 2: the bucket index is rebuilt from the keys of its partitions.
    owned = {TP(worker.table.changelog_topic_name, 2)}
    monkeypatch.setattr(app_worker.ctx.app.assignor, "assigned_actives", lambda: owned)
    status_topic = app_worker.ctx.topics.status_updates.get_topic_name()
    cid, alice = new_id(), new_id()
    messages = [(new_id(), new_id()) for _ in range(2)]  # (message id, recipient id)
    due = NOW + 250
    entries = [
        shape(
            due=due,
            status="DELIVERED",
            mid=mid,
            cid=cid,
            ts=NOW - 50,
            rid=rid,
            sid=alice,
            keys=[f"{rid}:whatsapp"],
        )
        for mid, rid in messages
    ]
    # A bucket half of today's shape and half of the other: an add after an upgrade appends to a recovered bucket.
    entries[1] = v3_schedule_entry(
        due=due,
        status="DELIVERED",
        mid=messages[1][0],
        cid=cid,
        ts=NOW - 50,
        rid=messages[1][1],
        sid=alice,
        keys=[f"{messages[1][1]}:whatsapp"],
    )
    recover(worker.table, {f"p2:b:{due // 100}": entries}, partition=2)
    async with worker.agent.test_context() as ctx:
        clock["now"] += 400
        await ctx.put(_tick(clock["now"]), partition=2)
        clock["now"] += 6000  # past READ's 2-5 s
        await ctx.put(_tick(clock["now"]), partition=2)
        clock["now"] += 200  # every receipt acked: this firing forgets the buckets
        await ctx.put(_tick(clock["now"]), partition=2)
        await worker.inflight.drain()
        assert worker.schedule(2).pending() == 0
    updates = sends.on(status_topic)
    want = [
        {
            "message_id": mid,
            "conversation_id": cid,
            "ts_ms": NOW - 50,
            "recipient_id": rid,
            "channel": "whatsapp",
            "status": status,
            "at_ms": at,
            "receipt_keys": [f"{rid}:whatsapp"],
            "source": "whatsapp",
            "sender_id": alice,
        }
        for status, at in (("DELIVERED", NOW + 400), ("READ", NOW + 6400))
        for mid, rid in messages
    ]
    got = [{k: u.get(k) for k in want[0]} for u in updates]
    # DELIVERED first; each READ in its own random delay's bucket, so in any order.
    assert [u["status"] for u in got] == ["DELIVERED", "DELIVERED", "READ", "READ"]
    assert sorted(got, key=lambda u: (u["at_ms"], u["message_id"])) == sorted(
        want, key=lambda u: (u["at_ms"], u["message_id"])
    )


async def test_a_recovered_receipt_states_entry_takes_the_next_updates(tracker_env):
    tracker, cassandra, sends, outcomes = tracker_env
    mid, cid, alice, bob, carol = (new_id() for _ in range(5))
    bob_wa, carol_ig = f"{bob}:whatsapp", f"{carol}:instagram"
    keys = [bob_wa, carol_ig]
    # As the tracker writes an entry today (and wrote it before its values were typed).
    entry = {
        "cid": cid,
        "ts": 1000,
        "sid": alice,
        "o": 3,
        "r": {
            bob_wa: {"s": "DELIVERED", "d": 1100, "rd": None},
            carol_ig: {"s": "SENT", "d": None, "rd": None},
        },
    }
    recover(tracker.tables.states, {mid: entry}, partition=0)
    async with tracker.agent.test_context() as agent:
        agent.sent_offset = 3  # the update the entry last applied, replayed
        await agent.put(
            status_update(mid, cid, bob, "whatsapp", "DELIVERED", 1100, keys, alice), key=mid.encode()
        )
        agent.sent_offset = 10
        await agent.put(status_update(mid, cid, bob, "whatsapp", "READ", 1300, keys, alice), key=mid.encode())
        await agent.put(
            status_update(mid, cid, carol, "instagram", "DELIVERED", 1400, keys, alice), key=mid.encode()
        )
        await tracker.inflight.drain()
        stored = tracker.tables.states[mid]
    assert outcomes == [["replayed"], ["applied"], ["applied"]]
    assert stored["r"] == {
        bob_wa: {"s": "READ", "d": 1100, "rd": 1300},
        carol_ig: {"s": "DELIVERED", "d": 1400, "rd": None},
    }
    assert stored["o"] == 11
    overall = [(w["overall"].status, w["overall"].delivered_ms) for w in cassandra.receipt_writes]
    assert overall == [("SENT", None), ("SENT", None), ("DELIVERED", 1400)]
    assert [(n["recipient_id"], n["status"]) for n in sends.on("notifications")] == [
        (bob, "DELIVERED"),
        (bob, "READ"),
        (carol, "DELIVERED"),
    ]


async def test_a_recovered_settled_marker_keeps_a_late_update_stale_and_rewrites_a_replayed_one(tracker_env):
    tracker, cassandra, sends, outcomes = tracker_env
    mid, cid, alice, bob = (new_id() for _ in range(4))
    bob_wa = f"{bob}:whatsapp"
    final = {
        "cid": cid,
        "ts": 1000,
        "sid": alice,
        "o": 7,
        "r": {bob_wa: {"s": "READ", "d": 1100, "rd": 1300}},
    }
    recover(tracker.tables.settled, {mid: {"o": 7, "e": final}}, partition=0)
    async with tracker.agent.test_context() as agent:
        agent.sent_offset = 12
        await agent.put(
            status_update(mid, cid, bob, "whatsapp", "DELIVERED", 1500, [bob_wa], alice), key=mid.encode()
        )
        agent.sent_offset = 7  # the settling update, replayed after a crash
        await agent.put(
            status_update(mid, cid, bob, "whatsapp", "READ", 1300, [bob_wa], alice), key=mid.encode()
        )
        await tracker.inflight.drain()
        assert mid not in tracker.tables.states
    assert outcomes == [["stale"], ["replayed"]]
    [write] = cassandra.receipt_writes
    assert (write["overall"].status, write["overall"].delivered_ms, write["overall"].read_ms) == (
        "READ",
        1100,
        1300,
    )
    assert [(n["recipient_id"], n["status"]) for n in sends.on("notifications")] == [(bob, "READ")]
