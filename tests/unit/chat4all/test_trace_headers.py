"""Trace context in Kafka record headers and in stored traceparent strings (chat4all/trace_headers.py)."""

from __future__ import annotations

from opentelemetry import trace

from chat4all import trace_headers, tracing


def _ids(context: object) -> tuple[int, int]:
    span_context = trace.get_current_span(context).get_span_context()  # type: ignore[arg-type]
    return span_context.trace_id, span_context.span_id


def _sampled(traceparent: str) -> bool:
    """The sampled bit of a traceparent's flags (the SDK also sets bit 2, "random trace id")."""
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


def test_headers_carry_a_span_to_the_next_hop(traced) -> None:
    with tracing.tracer().start_as_current_span("call", kind=trace.SpanKind.SERVER) as span:
        headers = trace_headers.inject()
    assert headers is not None and [k for k, _ in headers] == ["traceparent"]
    assert all(isinstance(v, bytes) for _, v in headers)
    context = trace_headers.extract(headers)
    assert context is not None
    assert _ids(context) == (span.get_span_context().trace_id, span.get_span_context().span_id)
    assert trace.get_current_span(context).get_span_context().is_remote
    # faust may hand the headers over as a mapping
    assert _ids(trace_headers.extract(dict(headers))) == _ids(context)


def test_a_child_of_extracted_headers_is_in_the_same_trace(traced) -> None:
    with tracing.tracer().start_as_current_span("call", kind=trace.SpanKind.SERVER) as root:
        headers = trace_headers.inject()
    with tracing.tracer().start_as_current_span("next hop", context=trace_headers.extract(headers)) as child:
        pass
    assert child.parent is not None and child.parent.span_id == root.get_span_context().span_id
    assert child.get_span_context().trace_id == root.get_span_context().trace_id


def test_records_without_a_context_or_with_a_bad_one_extract_to_none() -> None:
    assert trace_headers.extract(None) is None
    assert trace_headers.extract([]) is None
    assert trace_headers.extract([("content-type", b"json")]) is None
    assert trace_headers.extract([("traceparent", b"not-a-traceparent")]) is None
    assert trace_headers.extract([("traceparent", b"\xff\xfe")]) is None
    assert trace_headers.extract([("traceparent", b"")]) is None


def test_nothing_is_injected_outside_a_span() -> None:
    assert trace_headers.inject() is None
    assert trace_headers.traceparent() is None


def test_a_stored_traceparent_names_the_span_it_was_taken_from(traced) -> None:
    with tracing.tracer().start_as_current_span("call", kind=trace.SpanKind.SERVER) as span:
        stored = trace_headers.traceparent()
    assert isinstance(stored, str) and _sampled(stored)
    context = trace_headers.from_traceparent(stored)
    assert _ids(context) == (span.get_span_context().trace_id, span.get_span_context().span_id)
    assert trace_headers.from_traceparent(None) is None
    assert trace_headers.from_traceparent(42) is None
    assert trace_headers.from_traceparent("00-bad") is None


def test_an_unsampled_decision_travels_with_the_context(monkeypatch, traced) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    never = TracerProvider(sampler=tracing.call_roots_sampler(0.0)).get_tracer("never")
    with never.start_as_current_span("call", kind=trace.SpanKind.SERVER) as root:
        assert not root.is_recording()
        headers = trace_headers.inject()
    assert headers is not None and not _sampled(headers[0][1].decode())
    # The next hop (parent-based) keeps the decision: its span records nothing.
    monkeypatch.setattr(tracing, "_tracer", never)
    with tracing.tracer().start_as_current_span("next hop", context=trace_headers.extract(headers)) as child:
        assert not child.is_recording()
    assert traced.get_finished_spans() == ()


def test_only_served_calls_start_a_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider(sampler=tracing.call_roots_sampler(1.0)).get_tracer("t")
    with tracer.start_as_current_span("call", kind=trace.SpanKind.SERVER) as call:
        assert call.is_recording()
        with tracer.start_as_current_span("redis GET", kind=trace.SpanKind.CLIENT) as child:
            assert child.is_recording()
    with tracer.start_as_current_span("redis GET", kind=trace.SpanKind.CLIENT) as orphan:
        assert not orphan.is_recording()
