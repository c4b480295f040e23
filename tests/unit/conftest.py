"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def traced(monkeypatch: Any) -> Any:
    """Tracing on for the test, every trace kept, spans collected in memory (the returned exporter)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from chat4all import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing.call_roots_sampler(1.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "ENABLED", True)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("chat4all-test"))
    yield exporter
    provider.shutdown()
