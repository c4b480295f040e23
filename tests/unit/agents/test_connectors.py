"""A connector continues the message's trace: its span under the router's, and receipts fired from the schedule under it."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace

from chat4all import trace_headers, tracing
from tests.unit.pipeline_helpers import RecordedSends, new_id, unit_worker

NOW = 1_800_000_000_000


@pytest.fixture
def connector_env(monkeypatch):
    clock = {"now": NOW}
    worker = unit_worker("connectors", clock=lambda: clock["now"])
    sends = RecordedSends().install(monkeypatch, worker.ctx.topics, sender=worker.ctx.sender)
    return worker, worker.connectors.channels["whatsapp"], sends, clock


def _outbound(mid: str, rid: str) -> bytes:
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


def _tick(now: int) -> bytes:
    return json.dumps({"__tick__": now}).encode()


async def _deliver_and_read(worker, clock, mid: str, rid: str, headers) -> None:
    async with worker.agent.test_context() as ctx:
        await ctx.put(_outbound(mid, rid), key=mid.encode(), partition=0, headers=headers)
        for step in (600, 6000, 200):  # DELIVERED due, READ due, both acked and forgotten
            clock["now"] += step
            await ctx.put(_tick(clock["now"]), partition=0)
        await worker.inflight.drain()


async def test_fired_receipts_continue_the_trace_of_the_outbound_record(connector_env, traced) -> None:
    app_worker, worker, sends, clock = connector_env
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


async def test_with_tracing_off_nothing_is_stored_or_sent_for_traces(connector_env) -> None:
    app_worker, worker, sends, clock = connector_env
    assert not tracing.ENABLED
    mid, rid = new_id(), new_id()
    async with worker.agent.test_context() as ctx:
        await ctx.put(_outbound(mid, rid), key=mid.encode(), partition=0)
        entries = [e for _b, bucket in worker.schedule(0).due(clock["now"] + 10_000) for e in bucket]
        assert entries and all("tp" not in e for e in entries)
    await _deliver_and_read(worker, clock, new_id(), rid, None)
    assert sends.headers and all(h is None for h in sends.headers)


async def test_a_record_without_a_trace_context_makes_no_span(connector_env, traced) -> None:
    _app_worker, worker, sends, clock = connector_env
    await _deliver_and_read(worker, clock, new_id(), new_id(), None)
    assert traced.get_finished_spans() == ()
    assert all(h is None for h in sends.headers)
