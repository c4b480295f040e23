"""An agent's span for one consumed event: started from the record's trace headers, ended when the event is acked.

An agent handles an event in two parts (streams/inflight.py): the decision in the loop, then
the I/O in a background task, and acks it when both are done. The span covers both: the loop
body runs inside ``consumed(...)``, which makes the span current (so its sends, Cassandra calls
and log lines belong to it), and ``InFlight.submit`` takes it over with ``take()`` and ends it
when the event is acked (or marks it failed). A span nobody took over ends with the loop body.

Only records that carry a sampled trace context get a span: the trace and its sampling decision
start at the API, which gives an unsampled call's records no context; a record without one (a
schedule tick, an unsampled message, a record from an untraced producer) is handled without any
span or current context, so nothing it sends or writes is traced.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from chat4all import trace_headers, tracing


class _Held:
    """The current event's span until InFlight takes it over."""

    __slots__ = ("span", "taken")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.taken = False


_current: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("chat4all_event_span", default=None)


@contextlib.contextmanager
def consumed(event: Any, *, agent: str) -> Iterator[Span | None]:
    """Run the loop body of one event inside its agent's CONSUMER span (None: the record carries no sampled context)."""
    message = event.message
    parent = trace_headers.extract(message.headers)
    if parent is None:
        yield None
        return
    span = tracing.tracer().start_span(
        f"{agent} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": message.topic,
            "messaging.destination.partition.id": str(message.partition),
            "messaging.kafka.offset": message.offset,
        },
    )
    held = _Held(span)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    var_token = _current.set(held)
    try:
        yield span
    except BaseException as exc:
        if not held.taken:
            tracing.fail(span, exc)
            span.end()
            held.taken = True
        raise
    finally:
        _current.reset(var_token)
        otel_context.detach(token)
        if not held.taken:
            span.end()


def take() -> Span | None:
    """The current event's span, now the caller's to end (None when there is none or it was taken)."""
    held = _current.get()
    if held is None or held.taken:
        return None
    held.taken = True
    return held.span


def annotate(**attributes: Any) -> None:
    """Set attributes (message_id, ...) on the current event's span, if it has one that records."""
    held = _current.get()
    if held is not None and held.span.is_recording():
        for key, value in attributes.items():
            held.span.set_attribute(f"chat4all.{key}", value)
