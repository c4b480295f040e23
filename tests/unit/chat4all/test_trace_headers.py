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


UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_an_unsampled_span_propagates_nothing(traced) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    never = TracerProvider(sampler=tracing.call_roots_sampler(0.0)).get_tracer("never")
    with never.start_as_current_span("call", kind=trace.SpanKind.SERVER) as root:
        assert not root.is_recording() and root.get_span_context().is_valid
        assert trace_headers.inject() is None
        assert trace_headers.traceparent() is None
        assert trace_headers.inject(trace.set_span_in_context(root)) is None


def test_an_unsampled_traceparent_reads_as_no_context() -> None:
    for flags in ("00", "02", "fe"):
        value = UNSAMPLED[:-2] + flags
        assert trace_headers.extract([("traceparent", value.encode())]) is None
        assert trace_headers.extract({"traceparent": value.encode(), "tracestate": b"a=b"}) is None
        assert trace_headers.from_traceparent(value) is None
    for flags in ("01", "03", "ff"):
        value = SAMPLED[:-2] + flags
        context = trace_headers.extract([("traceparent", value.encode())])
        assert context is not None and trace.get_current_span(context).get_span_context().trace_flags.sampled
        assert trace_headers.from_traceparent(value) is not None


def test_the_flags_check_never_fails_on_bad_input() -> None:
    assert not trace_headers.sampled("")
    assert not trace_headers.sampled(b"00-short-01")
    assert trace_headers.sampled(SAMPLED) and trace_headers.sampled(SAMPLED.encode())
    assert not trace_headers.sampled(UNSAMPLED) and not trace_headers.sampled(UNSAMPLED.encode())
    # Sampled-looking flags on a malformed traceparent: the propagator still rejects it.
    assert trace_headers.extract([("traceparent", b"zz" + SAMPLED[2:].encode())]) is None


def test_a_callers_unsampled_metadata_is_kept_for_its_call() -> None:
    # gRPC metadata decides for the call (api/interceptors.py): that context is returned as is.
    context = trace_headers.from_carrier({"traceparent": UNSAMPLED})
    assert context is not None
    assert not trace.get_current_span(context).get_span_context().trace_flags.sampled


def test_only_served_calls_start_a_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider(sampler=tracing.call_roots_sampler(1.0)).get_tracer("t")
    with tracer.start_as_current_span("call", kind=trace.SpanKind.SERVER) as call:
        assert call.is_recording()
        with tracer.start_as_current_span("redis GET", kind=trace.SpanKind.CLIENT) as child:
            assert child.is_recording()
    with tracer.start_as_current_span("redis GET", kind=trace.SpanKind.CLIENT) as orphan:
        assert not orphan.is_recording()
