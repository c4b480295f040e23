"""An agent's span of one event lasts until the event is acked (streams/event_spans.py with streams/inflight.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from opentelemetry import trace

from chat4all import trace_headers, tracing
from streams import event_spans
from streams.inflight import InFlight


class _Event:
    def __init__(self, headers) -> None:
        self.message = SimpleNamespace(headers=headers, topic="messages", partition=3, offset=7)
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def _agent_spans(exporter) -> list:
    return [s for s in exporter.get_finished_spans() if s.name != "publish"]


def _headers() -> tuple[list[tuple[str, bytes]], trace.Span]:
    with tracing.tracer().start_as_current_span("publish", kind=trace.SpanKind.SERVER) as span:
        return trace_headers.inject(), span


async def test_the_span_ends_when_the_background_step_acks_the_event(traced) -> None:
    headers, parent = _headers()
    inflight = InFlight(name="router")
    release = asyncio.Event()
    seen = {}

    async def io() -> None:
        # The task copied the event's context: its calls and sends belong to the span.
        seen["span"] = trace.get_current_span()
        await release.wait()

    event = _Event(headers)
    with event_spans.consumed(event, agent="router") as span:
        assert trace.get_current_span() is span
        await inflight.submit(event, io)
    assert trace.get_current_span() is not span
    await asyncio.sleep(0)
    assert _agent_spans(traced) == []  # still in flight
    release.set()
    await inflight.drain()
    (finished,) = _agent_spans(traced)
    assert event.acked and seen["span"] is span
    assert finished.name == "router process" and finished.parent.span_id == parent.get_span_context().span_id
    assert finished.attributes["messaging.destination.partition.id"] == "3"
    assert finished.attributes["messaging.kafka.offset"] == 7


async def test_a_failed_step_marks_the_span_and_leaves_the_event_unacked(traced) -> None:
    headers, _ = _headers()
    inflight = InFlight(name="router")

    async def io() -> None:
        raise RuntimeError("refused")

    event = _Event(headers)
    with event_spans.consumed(event, agent="router"):
        await inflight.submit(event, io)
    await asyncio.gather(*inflight._tasks, return_exceptions=True)
    (finished,) = _agent_spans(traced)
    assert not event.acked and finished.status.status_code == trace.StatusCode.ERROR


async def test_an_event_acked_at_once_or_never_submitted_still_ends_its_span(traced) -> None:
    headers, _ = _headers()
    inflight = InFlight(name="router")
    with event_spans.consumed(_Event(headers), agent="router"):
        await inflight.submit(_Event(headers))
    with event_spans.consumed(_Event(headers), agent="router"):
        pass
    assert len(_agent_spans(traced)) == 2


async def test_an_event_without_a_context_gets_no_span(traced) -> None:
    with event_spans.consumed(_Event([("other", b"x")]), agent="router") as span:
        assert span is None
        event_spans.annotate(message_id="m")
        assert event_spans.take() is None
    assert traced.get_finished_spans() == ()
