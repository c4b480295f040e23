"""OpenTelemetry tracing of a process: set up from settings, and the one switch every call site checks.

With tracing off (``CHAT4ALL_TRACING_ENABLED=false``) nothing here makes a span: call sites test
``tracing.ENABLED`` (a module global) before anything else, so the hot paths pay one global read
per message. With it on, spans go to the OTLP endpoint in batches (BatchSpanProcessor), sampled by
a parent-based ratio sampler: a root span (an API call) is kept with ``tracing_sample_ratio``, and
every span below it follows its parent's decision, across processes (chat4all/trace_headers.py).
An unsampled decision goes no further than the span that took it: nothing below it makes a span
(``recording()``), and no record or schedule entry carries its context, so the next hop has none.
Traces start only at calls a process serves (SERVER spans): a Redis or Cassandra call of a
background task, outside any call, makes no trace of its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from chat4all.settings import Settings

logger = logging.getLogger(__name__)

# Read by every instrumented call site before it does anything else; set once by setup().
ENABLED = False
API_SERVICE = "chat4all-api"
WORKER_SERVICE = "chat4all-worker"
_tracer: Tracer = trace.NoOpTracer()
_provider: Any = None


def call_roots_sampler(ratio: float) -> Any:
    """The sampler: ``ratio`` of the traces a served call starts, and no trace started by anything else."""
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )

    by_ratio = TraceIdRatioBased(ratio)

    class CallRoots(Sampler):
        """Root spans: SERVER spans by trace-id ratio, any other kind dropped."""

        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            """Decide for a root span."""
            if kind is not SpanKind.SERVER:
                return SamplingResult(Decision.DROP)
            return by_ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            """The sampler's name, as OpenTelemetry reports it."""
            return f"CallRoots{{{by_ratio.get_description()}}}"

    return ParentBased(CallRoots())


def setup(settings: Settings, *, service_name: str, attributes: Mapping[str, str] | None = None) -> bool:
    """Start tracing for this process from settings; returns whether it is on.

    ``attributes`` join the resource (e.g. the worker's role). Idempotent: a second call keeps
    the first set-up.
    """
    global ENABLED, _tracer, _provider
    if not settings.tracing_enabled:
        return False
    if _provider is not None:
        return True
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service_name, **(attributes or {})})
    provider = TracerProvider(resource=resource, sampler=call_roots_sampler(settings.tracing_sample_ratio))
    endpoint = settings.tracing_otlp_endpoint
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("chat4all")
    ENABLED = True
    logger.info(
        "tracing to %s as %s (sample ratio %s)", endpoint, service_name, settings.tracing_sample_ratio
    )
    return True


def shutdown() -> None:
    """Export the spans still queued and stop the exporter (at process exit)."""
    global ENABLED
    if _provider is not None:
        _provider.shutdown()
    ENABLED = False


def tracer() -> Tracer:
    """The process's tracer (a no-op one while tracing is off)."""
    return _tracer


def recording() -> bool:
    """Whether tracing is on and the current span records (is sampled): the test before building any child span."""
    return ENABLED and trace.get_current_span().is_recording()


def annotate(**attributes: Any) -> None:
    """Set attributes (e.g. message_id) on the current span, if tracing is on and one is recording."""
    if not ENABLED:
        return
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in attributes.items():
            span.set_attribute(f"chat4all.{key}", value)


def fail(span: Span, exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))


@contextlib.contextmanager
def client_span(name: str, attributes: Mapping[str, Any]) -> Iterator[Span | None]:
    """A CLIENT span around a call to a dependency (S3), under the current span; None and no span when off or unsampled."""
    if not recording():
        yield None
        return
    with _tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            fail(span, exc)
            raise


def start_client_span(name: str, attributes: Mapping[str, Any]) -> Span | None:
    """A started CLIENT span under the current span, for a call that ends in a callback; None when off or unsampled."""
    if not recording():
        return None
    return _tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
