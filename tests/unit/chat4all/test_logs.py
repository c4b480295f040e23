"""Log lines inside a sampled span carry its trace_id and span_id (chat4all/logs.py)."""

from __future__ import annotations

import logging

from opentelemetry import trace

from chat4all import tracing
from chat4all.logs import TraceIds, _ContextFormatter, _JsonFormatter


def _record() -> logging.LogRecord:
    record = logging.LogRecord("chat4all.test", logging.INFO, __file__, 1, "routed", None, None)
    TraceIds().filter(record)
    return record


def test_a_line_inside_a_span_names_the_trace_and_the_span(traced) -> None:
    with tracing.tracer().start_as_current_span("router process", kind=trace.SpanKind.SERVER) as span:
        record = _record()
    ctx = span.get_span_context()
    assert record.trace_id == format(ctx.trace_id, "032x") and record.span_id == format(ctx.span_id, "016x")
    text = _ContextFormatter("%(message)s").format(record)
    assert text == f"routed trace_id={record.trace_id} span_id={record.span_id}"
    assert f'"trace_id": "{record.trace_id}"' in _JsonFormatter().format(record)


def test_a_line_outside_a_span_or_with_tracing_off_has_no_ids(traced, monkeypatch) -> None:
    assert not hasattr(_record(), "trace_id")
    with tracing.tracer().start_as_current_span("call", kind=trace.SpanKind.SERVER):
        monkeypatch.setattr(tracing, "ENABLED", False)
        assert not hasattr(_record(), "trace_id")
