"""Connector agent under faust's test_context: durable schedule firing, and fired buckets kept until acked."""

from __future__ import annotations

import json

import pytest

from tests.unit.pipeline_helpers import RecordedSends, new_id, unit_worker


@pytest.fixture
def connector_env(monkeypatch):
    clock = {"now": 1_800_000_000_000}
    worker = unit_worker("connectors", clock=lambda: clock["now"])
    sends = RecordedSends(ack_at_once=False).install(monkeypatch, worker.ctx.topics, sender=worker.ctx.sender)
    return worker, worker.connectors.channels["whatsapp"], sends, clock


def _outbound(mid: str, rid: str, sender: str) -> bytes:
    return json.dumps(
        {
            "message_id": mid,
            "conversation_id": new_id(),
            "sender_id": sender,
            "ts_ms": 1000,
            "recipient_id": rid,
            "channel": "whatsapp",
            "handle": "+55",
            "receipt_keys": [f"{rid}:whatsapp"],
        }
    ).encode()


def _tick(now: int) -> bytes:
    return json.dumps({"__tick__": now}).encode()


async def test_a_fired_bucket_stays_in_the_table_until_its_receipts_are_acked(connector_env):
    app_worker, worker, sends, clock = connector_env
    mid, bob, alice = new_id(), new_id(), new_id()
    agent = worker.agent
    status_topic = app_worker.ctx.topics.status_updates.get_topic_name()
    async with agent.test_context() as ctx:
        await ctx.put(_outbound(mid, bob, alice), key=mid.encode(), partition=0)
        schedule = worker.schedule(0)
        assert schedule.pending() == 1

        clock["now"] += 600  # past the 100-500 ms DELIVERED delay
        await ctx.put(_tick(clock["now"]), partition=0)
        assert [u["status"] for u in sends.on(status_topic)] == ["DELIVERED"]
        # Not acked yet: the bucket stays (a crash now fires it again), READ is scheduled beside it.
        assert schedule.pending() == 2

        clock["now"] += 200
        await ctx.put(_tick(clock["now"]), partition=0)
        assert [u["status"] for u in sends.on(status_topic)] == ["DELIVERED"]  # not fired twice
        assert schedule.pending() == 2

        sends.ack_all()
        clock["now"] += 200
        await ctx.put(_tick(clock["now"]), partition=0)
        assert schedule.pending() == 1  # only READ is left

        clock["now"] += 6000
        await ctx.put(_tick(clock["now"]), partition=0)
        sends.ack_all()
        clock["now"] += 200
        await ctx.put(_tick(clock["now"]), partition=0)
        await worker.inflight.drain()
    assert [u["status"] for u in sends.on(status_topic)] == ["DELIVERED", "READ"]
    assert schedule.pending() == 0


async def test_after_a_crash_an_unacked_bucket_fires_again(connector_env):
    app_worker, worker, sends, clock = connector_env
    mid, bob, alice = new_id(), new_id(), new_id()
    agent = worker.agent
    status_topic = app_worker.ctx.topics.status_updates.get_topic_name()
    async with agent.test_context() as ctx:
        await ctx.put(_outbound(mid, bob, alice), key=mid.encode(), partition=1)
        clock["now"] += 600
        await ctx.put(_tick(clock["now"]), partition=1)
        worker.fired.clear()  # the process died: its memory of what fired is gone, the table is not
        worker.last_fired.clear()
        clock["now"] += 200
        await ctx.put(_tick(clock["now"]), partition=1)
        await worker.inflight.drain()
    delivered = [u for u in sends.on(status_topic) if u["message_id"] == mid]
    assert [u["status"] for u in delivered] == [
        "DELIVERED",
        "DELIVERED",
    ]  # a duplicate, which the tracker ignores
