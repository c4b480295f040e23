"""Status tracker agent under faust's test_context: one table entry per message, Cassandra writes, notifications, recovered entries."""

from __future__ import annotations

from tests.unit.agents.worker_doubles import new_id, recover, status_update


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
