"""Router agent under faust's test_context: dedup, fan-out per recipient and channel, dead letters."""

from __future__ import annotations

import json

import pytest

from tests.unit.agents.worker_doubles import MemoryRepository, RecordedSends, new_id, unit_worker


@pytest.fixture
def router_env(monkeypatch):
    cassandra = MemoryRepository()
    worker = unit_worker("router", cassandra=cassandra)
    router = worker.router
    outcomes: list[str] = []
    original = router.route_message

    async def recording(event, *, cassandra):
        outcomes.append(await original(event, cassandra=cassandra))
        return outcomes[-1]

    monkeypatch.setattr(router, "route_message", recording)
    sends = RecordedSends().install(monkeypatch, worker.ctx.topics, sender=worker.ctx.sender)
    return router, cassandra, sends, outcomes


def _message(conversation_id: str, sender_id: str, **extra) -> bytes:
    body = {
        "message_id": new_id(),
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "ts_ms": 1_700_000_000_000,
        "content": "hi",
    }
    body.update(extra)
    return json.dumps(body).encode()


async def test_a_redelivered_message_is_routed_once(router_env):
    router, cassandra, sends, outcomes = router_env
    alice, bob, conv = new_id(), new_id(), new_id()
    cassandra.conversations[conv] = {alice, bob}
    raw = _message(conv, alice)
    async with router.agent.test_context() as agent:
        await agent.put(raw, key=conv.encode())
        await agent.put(raw, key=conv.encode())
        await router.inflight.drain()
    assert outcomes == ["routed", "duplicate"]
    mid = json.loads(raw)["message_id"]
    assert cassandra.messages[mid]["writes"] == 1
    assert cassandra.messages[mid]["receipt_keys"] == [f"{bob}:native"]
    assert len(sends.on("native-outbound")) == 1


async def test_fan_out_one_record_per_recipient_and_channel_with_the_full_key(router_env):
    router, cassandra, sends, outcomes = router_env
    alice, bob, carol, conv = new_id(), new_id(), new_id(), new_id()
    cassandra.conversations[conv] = {alice, bob, carol}
    cassandra.channels[bob] = {"whatsapp": "+55", "instagram": "@bob"}
    cassandra.channels[carol] = {"instagram": "@carol"}
    async with router.agent.test_context() as agent:
        await agent.put(_message(conv, alice), key=conv.encode())
        await router.inflight.drain()
    out = sends.on("whatsapp-outbound") + sends.on("instagram-outbound")
    assert sorted((o["recipient_id"], o["channel"], o["handle"]) for o in out) == sorted(
        [(bob, "whatsapp", "+55"), (bob, "instagram", "@bob"), (carol, "instagram", "@carol")]
    )
    keys = sorted([f"{bob}:instagram", f"{bob}:whatsapp", f"{carol}:instagram"])
    assert all(sorted(o["receipt_keys"]) == keys and o["conversation_id"] == conv and o["ts_ms"] for o in out)


async def test_bad_messages_go_to_dead_letters_with_their_reason(router_env):
    router, cassandra, sends, outcomes = router_env
    alice, mallory, conv = new_id(), new_id(), new_id()
    cassandra.conversations[conv] = {alice}
    async with router.agent.test_context() as agent:
        await agent.put(b"{not json", key=b"k")
        await agent.put(_message(new_id(), alice), key=b"k")
        await agent.put(_message(conv, mallory), key=conv.encode())
        await agent.put(_message(conv, "not-a-uuid"), key=conv.encode())
        await router.inflight.drain()
    reasons = [d["reason"] for d in sends.on("dead-letters")]
    assert outcomes == ["dead-lettered"] * 4
    assert reasons[0].startswith("not JSON") and reasons[1] == "conversation not found"
    assert reasons[2] == "sender not a participant" and reasons[3].startswith("invalid sender_id")
    assert not cassandra.messages


async def test_the_same_record_replayed_after_a_crash_is_routed_again_but_a_copy_is_not(router_env):
    router, cassandra, sends, outcomes = router_env
    alice, bob, conv = new_id(), new_id(), new_id()
    cassandra.conversations[conv] = {alice, bob}
    raw = _message(conv, alice)
    async with router.agent.test_context() as agent:
        await agent.put(raw, key=conv.encode())
        # A replay re-reads the very record (same offset): its effects may never have become
        # durable, so it is routed again; a copy published again (next offset) is a duplicate.
        agent.sent_offset -= 1
        await agent.put(raw, key=conv.encode())
        await agent.put(raw, key=conv.encode())
        await router.inflight.drain()
    assert outcomes == ["routed", "routed", "duplicate"]
    assert len(sends.on("native-outbound")) == 2
