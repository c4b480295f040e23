"""The trace context across Kafka and the durable schedule: W3C traceparent in record headers and in stored strings.

Every record the API or a worker produces inside a sampled span carries ``traceparent`` (and
``tracestate`` when set) as Kafka record headers; the consumer of the next hop continues the
trace from them. A receipt scheduled for later stores the same traceparent string in its
schedule entry (tables/scheduled_receipts.py), so the receipt fired from it continues the trace
too. Only sampled contexts travel: ``inject`` and ``traceparent`` give nothing for a span that is
not sampled, and ``extract`` and ``from_traceparent`` read a traceparent whose flags say "not
sampled" as no context at all (a look at its flags, before the propagator parses it), so the
hops after an unsampled decision make no span and carry nothing. Call these only with tracing
on (``chat4all.tracing.ENABLED``): off, nothing is injected and headers are never parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_NAMES = (TRACEPARENT, TRACESTATE)
_PROPAGATOR = TraceContextTextMapPropagator()

Headers = list[tuple[str, bytes]]

# In "vv-<32 hex trace id>-<16 hex span id>-ff", the flags' last hex digit: odd when sampled.
_FLAGS_DIGIT = 54
_SAMPLED_DIGITS = frozenset("13579bdf")
_SAMPLED_BYTES = frozenset(b"13579bdf")


def sampled(value: str | bytes) -> bool:
    """Whether a traceparent's flags say sampled (False for anything too short to be one); no parsing."""
    if len(value) <= _FLAGS_DIGIT:
        return False
    digit = value[_FLAGS_DIGIT]
    return digit in (_SAMPLED_BYTES if isinstance(value, bytes | bytearray) else _SAMPLED_DIGITS)


def _sampled_span(context: Context | None) -> bool:
    return trace.get_current_span(context).get_span_context().trace_flags.sampled


def inject(context: Context | None = None) -> Headers | None:
    """Kafka record headers carrying ``context`` (default: the current one); None when it holds no sampled span."""
    if not _sampled_span(context):
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    if TRACEPARENT not in carrier:
        return None
    return [(k, v.encode("ascii")) for k, v in carrier.items()]


def extract(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> Context | None:
    """The sampled trace context in a consumed record's headers; None when they carry none, an unsampled or a malformed one."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier: dict[str, str] = {}
    for key, value in pairs:
        if key in _NAMES and value:
            if key == TRACEPARENT and not sampled(value):
                return None
            try:
                carrier[key] = value.decode("ascii") if isinstance(value, bytes | bytearray) else str(value)
            except UnicodeDecodeError:  # bad input from outside: no context, never an error
                continue
    return from_carrier(carrier)


def traceparent(context: Context | None = None) -> str | None:
    """The traceparent string of ``context`` (default: the current one), to store; None without a sampled span."""
    if not _sampled_span(context):
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    return carrier.get(TRACEPARENT)


def from_traceparent(value: Any) -> Context | None:
    """The sampled trace context a stored traceparent string names; None for anything else (an unsampled one too)."""
    if not isinstance(value, str) or not sampled(value):
        return None
    return from_carrier({TRACEPARENT: value})


def from_carrier(carrier: Mapping[str, str]) -> Context | None:
    """The context in a text carrier (traceparent/tracestate), or None when it holds no valid one.

    An unsampled context is returned as such: a caller's gRPC metadata (api/interceptors.py)
    decides for the call it makes, and the call's span follows it.
    """
    if TRACEPARENT not in carrier:
        return None
    context = _PROPAGATOR.extract(carrier)
    # A malformed traceparent extracts to an empty context: treat it as none.
    return context if context else None
