"""What the benchmarks publish carries a trace context as the API's records do (cli/harness/seeding.py)."""

from __future__ import annotations

from opentelemetry import trace

from chat4all import trace_headers
from chat4all.settings import Settings
from cli.harness.seeding import api_trace_headers


def _context(headers: list[tuple[str, bytes]] | None) -> trace.SpanContext:
    return trace.get_current_span(trace_headers.extract(headers)).get_span_context()


def test_records_carry_a_new_sampled_trace_at_the_ratio() -> None:
    kept = [_context(api_trace_headers(Settings(tracing_sample_ratio=1.0))) for _ in range(3)]
    assert all(c.is_valid and c.trace_flags.sampled for c in kept)
    assert len({c.trace_id for c in kept}) == 3
    # An unsampled draw carries nothing, as the API publishes nothing outside a sampled span.
    assert all(api_trace_headers(Settings(tracing_sample_ratio=0.0)) is None for _ in range(20))


def test_with_tracing_off_records_carry_none() -> None:
    assert api_trace_headers(Settings(tracing_enabled=False)) is None
