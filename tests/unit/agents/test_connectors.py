"""Connector agent under faust's test_context: durable schedule firing, fired buckets kept until acked, recovered entries of every version, the message's trace continued."""

from __future__ import annotations

import json

import pytest
from faust.types import TP
from opentelemetry import trace

from chat4all import trace_headers, tracing
from tests.unit.agents.worker_doubles import (
    RecordedSends,
    new_id,
    recover,
    unit_worker,
    v1_schedule_entry,
    v2_schedule_entry,
    v3_schedule_entry,
)


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


NOW = 1_800_000_000_000


@pytest.fixture
def acking_connector_env(monkeypatch):
    """As connector_env, with every send acked at once (receipts as a recovered worker sends them)."""
    clock = {"now": NOW}
    worker = unit_worker("connectors", clock=lambda: clock["now"])
    sends = RecordedSends().install(monkeypatch, worker.ctx.topics, sender=worker.ctx.sender)
    return worker, worker.connectors.channels["whatsapp"], sends, clock


@pytest.mark.parametrize(
    "shape",
    [v1_schedule_entry, v2_schedule_entry, v3_schedule_entry],
    ids=["version 1", "version 2", "version 3"],
)
async def test_recovered_schedule_entries_fire_their_receipts_then_schedule_read(
    acking_connector_env, shape, monkeypatch
):
    app_worker, worker, sends, clock = acking_connector_env
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


def _outbound_now(mid: str, rid: str) -> bytes:
    """An outbound record sent just before NOW, from a new sender."""
    return json.dumps(
        {
            "message_id": mid,
            "conversation_id": new_id(),
            "sender_id": new_id(),
            "ts_ms": NOW - 10,
            "recipient_id": rid,
            "channel": "whatsapp",
            "handle": "+55",
            "receipt_keys": [f"{rid}:whatsapp"],
        }
    ).encode()


async def _deliver_and_read(worker, clock, mid: str, rid: str, headers) -> None:
    async with worker.agent.test_context() as ctx:
        await ctx.put(_outbound_now(mid, rid), key=mid.encode(), partition=0, headers=headers)
        for step in (600, 6000, 200):  # DELIVERED due, READ due, both acked and forgotten
            clock["now"] += step
            await ctx.put(_tick(clock["now"]), partition=0)
        await worker.inflight.drain()


async def test_fired_receipts_continue_the_trace_of_the_outbound_record(acking_connector_env, traced) -> None:
    app_worker, worker, sends, clock = acking_connector_env
    mid, rid = new_id(), new_id()
    with tracing.tracer().start_as_current_span("router process", kind=trace.SpanKind.SERVER) as router:
        headers = trace_headers.inject()
    await _deliver_and_read(worker, clock, mid, rid, headers)

    status_topic = app_worker.ctx.topics.status_updates.get_topic_name()
    fired = [(v, h) for (t, _k, v), h in zip(sends.sent, sends.headers, strict=True) if t == status_topic]
    assert [v["status"] for v, _ in fired] == ["DELIVERED", "READ"]
    spans = {s.name: s for s in traced.get_finished_spans()}
    connector = spans["whatsapp-connector process"]
    trace_id = router.get_span_context().trace_id
    assert connector.parent.span_id == router.get_span_context().span_id
    assert connector.context.trace_id == trace_id
    assert connector.attributes["chat4all.message_id"] == mid
    for status in ("DELIVERED", "READ"):
        fire = spans[f"whatsapp-connector fire {status}"]
        assert fire.parent.span_id == connector.context.span_id and fire.context.trace_id == trace_id
        assert fire.attributes["chat4all.message_id"] == mid
    # Each fired record's headers name its fire span: the status tracker continues from there.
    for value, record_headers in fired:
        context = trace.get_current_span(trace_headers.extract(record_headers)).get_span_context()
        assert context.trace_id == trace_id
        assert context.span_id == spans[f"whatsapp-connector fire {value['status']}"].context.span_id
    # Ticks carry no context: they make no spans (the fourth is the test's router span).
    assert len(traced.get_finished_spans()) == 4


async def test_with_tracing_off_nothing_is_stored_or_sent_for_traces(acking_connector_env) -> None:
    app_worker, worker, sends, clock = acking_connector_env
    assert not tracing.ENABLED
    mid, rid = new_id(), new_id()
    async with worker.agent.test_context() as ctx:
        await ctx.put(_outbound_now(mid, rid), key=mid.encode(), partition=0)
        entries = [e for _b, bucket in worker.schedule(0).due(clock["now"] + 10_000) for e in bucket]
        assert entries and all("tp" not in e for e in entries)
    await _deliver_and_read(worker, clock, new_id(), rid, None)
    assert sends.headers and all(h is None for h in sends.headers)


async def test_a_record_without_a_trace_context_makes_no_span(acking_connector_env, traced) -> None:
    _app_worker, worker, sends, clock = acking_connector_env
    await _deliver_and_read(worker, clock, new_id(), new_id(), None)
    assert traced.get_finished_spans() == ()
    assert all(h is None for h in sends.headers)
