"""Status tracker agent under faust's test_context: one table entry per message, Cassandra writes, notifications."""

from __future__ import annotations

import json

import pytest

from tests.unit.pipeline_helpers import MemoryStore, RecordedSends, new_id, use_tmp_datadir


@pytest.fixture
def tracker_env(monkeypatch):
    use_tmp_datadir()
    import agents.status_tracker as tracker

    store = MemoryStore()

    async def provider(_settings):
        return store

    monkeypatch.setattr(tracker, "store_provider", provider)
    outcomes: list[list[str]] = []
    original = tracker.track_status

    async def recording(event, *, store, inflight):
        outcomes.append(await original(event, store=store, inflight=inflight))
        return outcomes[-1]

    monkeypatch.setattr(tracker, "track_status", recording)
    return tracker, store, RecordedSends().install(monkeypatch), outcomes


def _update(mid, cid, rid, channel, status, at, keys, sender):
    return json.dumps({"message_id": mid, "conversation_id": cid, "ts_ms": 1000, "recipient_id": rid, "channel": channel,
                       "status": status, "at_ms": at, "receipt_keys": keys, "sender_id": sender}).encode()


async def test_updates_walk_the_state_machine_and_write_only_changes(tracker_env):
    tracker, store, sends, outcomes = tracker_env
    mid, cid, alice, bob, carol = (new_id() for _ in range(5))
    keys = [f"{bob}:whatsapp", f"{carol}:instagram"]
    seq = [
        (bob, "whatsapp", "DELIVERED", 1100),
        (bob, "whatsapp", "DELIVERED", 1150),  # duplicate
        (carol, "instagram", "READ", 1200),    # READ straight after SENT
        (bob, "whatsapp", "READ", 1300),
        (bob, "whatsapp", "DELIVERED", 1400),  # late, after READ: stale
    ]
    async with tracker.status_tracker.test_context() as agent:
        for rid, ch, st, at in seq:
            await agent.put(_update(mid, cid, rid, ch, st, at, keys, alice), key=mid.encode())
        await tracker.inflight.drain()
        assert mid not in tracker.receipt_states  # every receipt READ: the entry left the table
    assert outcomes == [["applied"], ["duplicate"], ["applied"], ["applied"], ["stale"]]
    assert [w["overall"].status for w in store.receipt_writes] == ["SENT", "DELIVERED", "READ"]
    last = store.receipt_writes[-1]
    assert (last["overall"].delivered_ms, last["overall"].read_ms) == (1200, 1300)
    versions = [w["version"] for w in store.receipt_writes]
    assert versions == sorted(set(versions))
    notes = sends.on("notifications")
    assert [(n["user_id"], n["status"]) for n in notes] == [(alice, "DELIVERED"), (alice, "READ"), (alice, "READ")]
