"""The trace context across Kafka and the durable schedule: W3C traceparent in record headers and in stored strings.

Every record the API or a worker produces while tracing is on carries ``traceparent`` (and
``tracestate`` when set) as Kafka record headers; the consumer of the next hop continues the
trace from them. A receipt scheduled for later stores the same traceparent string in its
schedule entry (tables/scheduled_receipts.py), so the receipt fired from it continues the trace
too. Call these only with tracing on (``chat4all.tracing.ENABLED``): off, nothing is injected
and headers are never parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_NAMES = (TRACEPARENT, TRACESTATE)
_PROPAGATOR = TraceContextTextMapPropagator()

Headers = list[tuple[str, bytes]]


def inject(context: Context | None = None) -> Headers | None:
    """Kafka record headers carrying ``context`` (default: the current one); None when it holds no valid span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    if TRACEPARENT not in carrier:
        return None
    return [(k, v.encode("ascii")) for k, v in carrier.items()]


def extract(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Context | None:
    """The trace context in a consumed record's headers, or None when they carry none (or a malformed one)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier: dict[str, str] = {}
    for key, value in pairs:
        if key in _NAMES and value:
            try:
                carrier[key] = value.decode("ascii") if isinstance(value, bytes | bytearray) else str(value)
            except UnicodeDecodeError:  # bad input from outside: no context, never an error
                continue
    return from_carrier(carrier)


def traceparent(context: Context | None = None) -> str | None:
    """The traceparent string of ``context`` (default: the current one), to store; None without a valid span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    return carrier.get(TRACEPARENT)


def from_traceparent(value: Any) -> Context | None:
    """The trace context a stored traceparent string names; None for anything else."""
    if not isinstance(value, str):
        return None
    return from_carrier({TRACEPARENT: value})


def from_carrier(carrier: Mapping[str, str]) -> Context | None:
    """The context in a text carrier (traceparent/tracestate), or None when it holds no valid one."""
    if TRACEPARENT not in carrier:
        return None
    context = _PROPAGATOR.extract(carrier)
    # A malformed traceparent extracts to an empty context: treat it as none.
    return context if context else None
