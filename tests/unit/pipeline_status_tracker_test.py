"""Status tracker agent under faust's test_context: one table entry per message, Cassandra writes, notifications."""

from __future__ import annotations

from tests.unit.pipeline_helpers import new_id, status_update


async def test_updates_walk_the_state_machine_and_write_only_changes(tracker_env):
    tracker, cassandra, sends, outcomes = tracker_env
    mid, cid, alice, bob, carol = (new_id() for _ in range(5))
    keys = [f"{bob}:whatsapp", f"{carol}:instagram"]
    seq = [
        (bob, "whatsapp", "DELIVERED", 1100),
        (bob, "whatsapp", "DELIVERED", 1150),  # duplicate
        (carol, "instagram", "READ", 1200),  # READ straight after SENT
        (bob, "whatsapp", "READ", 1300),
        (bob, "whatsapp", "DELIVERED", 1400),  # late, after READ: stale
    ]
    async with tracker.agent.test_context() as agent:
        for rid, ch, st, at in seq:
            await agent.put(status_update(mid, cid, rid, ch, st, at, keys, alice), key=mid.encode())
        await tracker.inflight.drain()
        assert mid not in tracker.tables.states  # every receipt READ: the entry left the table
    assert outcomes == [["applied"], ["duplicate"], ["applied"], ["applied"], ["stale"]]
    assert [w["overall"].status for w in cassandra.receipt_writes] == ["SENT", "DELIVERED", "READ"]
    last = cassandra.receipt_writes[-1]
    assert (last["overall"].delivered_ms, last["overall"].read_ms) == (1200, 1300)
    versions = [w["version"] for w in cassandra.receipt_writes]
    assert versions == sorted(set(versions))
    notes = sends.on("notifications")
    assert [(n["user_id"], n["status"]) for n in notes] == [
        (alice, "DELIVERED"),
        (alice, "READ"),
        (alice, "READ"),
    ]


async def test_a_replayed_update_writes_the_entry_to_cassandra_again(tracker_env):
    tracker, cassandra, sends, outcomes = tracker_env
    mid, cid, alice, bob = (new_id() for _ in range(4))
    keys = [f"{bob}:whatsapp"]
    async with tracker.agent.test_context() as agent:
        await agent.put(
            status_update(mid, cid, bob, "whatsapp", "DELIVERED", 1100, keys, alice), key=mid.encode()
        )
        # The same record again (a crash after its table write, before its Cassandra write
        # was known to be done): not a duplicate to drop, the entry is written again.
        agent.sent_offset -= 1
        await agent.put(
            status_update(mid, cid, bob, "whatsapp", "DELIVERED", 1100, keys, alice), key=mid.encode()
        )
        await agent.put(status_update(mid, cid, bob, "whatsapp", "READ", 1300, keys, alice), key=mid.encode())
        agent.sent_offset -= 1  # and the settling update replayed: its final state is written again
        await agent.put(status_update(mid, cid, bob, "whatsapp", "READ", 1300, keys, alice), key=mid.encode())
        await agent.put(
            status_update(mid, cid, bob, "whatsapp", "DELIVERED", 1400, keys, alice), key=mid.encode()
        )
        await tracker.inflight.drain()
    assert outcomes == [["applied"], ["replayed"], ["applied"], ["replayed"], ["stale"]]
    assert [w["overall"].status for w in cassandra.receipt_writes] == [
        "DELIVERED",
        "DELIVERED",
        "READ",
        "READ",
    ]
    assert cassandra.receipt_writes[1]["version"] == cassandra.receipt_writes[0]["version"]
