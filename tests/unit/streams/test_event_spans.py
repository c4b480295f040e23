"""An agent's span of one event lasts until the event is acked (streams/event_spans.py with streams/inflight.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from opentelemetry import trace

from chat4all import trace_headers, tracing
from chat4all.cassandra import trace_statement
from streams import event_spans
from streams.inflight import InFlight
from streams.sending import RecordSender
from tests.unit.streams.test_sending import _App, _Producer, _Topic


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


async def _handle_and_send(headers) -> tuple[object, list]:
    """Consume an event with ``headers`` as an agent does: a Cassandra statement, a record sent, then the ack."""
    producer = _Producer()
    sender = RecordSender(app=_App(producer), direct=True)  # type: ignore[arg-type]
    inflight = InFlight(name="router")
    event = _Event(headers)
    with event_spans.consumed(event, agent="router") as span:
        event_spans.annotate(message_id="m")
        written = asyncio.get_running_loop().create_future()
        trace_statement(written, keyspace="chat4all", query="INSERT INTO messages (id) VALUES (?)")
        written.set_result(None)
        futures = sender.send_soon(_Topic(), [(b"m", b"outbound")])
        await sender.send(_Topic(), key=b"m", value=b"notification")
        await inflight.submit(event)
    await asyncio.sleep(0.01)
    for ack in producer.acks:
        ack.set_result("ok")
    await asyncio.gather(*futures)
    assert event.acked
    return span, producer.headers


async def test_an_unsampled_record_makes_no_span_and_sends_no_context(traced) -> None:
    unsampled = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
    span, sent_headers = await _handle_and_send(unsampled)
    assert span is None
    assert sent_headers == [None, None]
    assert traced.get_finished_spans() == ()


async def test_a_sampled_record_spans_its_statements_and_sends_its_context(traced) -> None:
    headers, _ = _headers()
    span, sent_headers = await _handle_and_send(headers)
    await asyncio.sleep(0)
    names = sorted(s.name for s in _agent_spans(traced))
    assert names == ["cassandra INSERT", "router process"]
    for record_headers in sent_headers:
        context = trace.get_current_span(trace_headers.extract(record_headers)).get_span_context()
        assert context.span_id == span.get_span_context().span_id
