"""Schedule entries (tables/scheduled_receipts.py): earlier versions read in today's shape; the trace context of the span that scheduled them."""

from __future__ import annotations

from opentelemetry import trace

from chat4all import trace_headers, tracing
from tables.scheduled_receipts import VERSION, read_scheduled_receipt, scheduled_receipt
from tests.unit.agents.worker_doubles import v1_schedule_entry, v2_schedule_entry, v3_schedule_entry

FIELDS = {
    "due_ms": 5,
    "status": "DELIVERED",
    "message_id": "m",
    "conversation_id": "c",
    "ts_ms": 1,
    "recipient_id": "r",
    "sender_id": "s",
    "receipt_keys": ["r:whatsapp"],
}


def test_an_entry_keeps_the_traceparent_it_is_given(traced) -> None:
    with tracing.tracer().start_as_current_span("connector", kind=trace.SpanKind.SERVER) as span:
        entry = scheduled_receipt(**FIELDS, traceparent=trace_headers.traceparent())
    assert entry["v"] == VERSION == 3
    context = trace_headers.from_traceparent(read_scheduled_receipt(entry)["tp"])
    assert trace.get_current_span(context).get_span_context().span_id == span.get_span_context().span_id


def test_with_tracing_off_an_entry_has_no_traceparent() -> None:
    entry = scheduled_receipt(**FIELDS)
    assert "tp" not in entry and entry["v"] == 3


def test_older_entries_read_without_a_traceparent() -> None:
    v2 = {
        "v": 2,
        "due": 5,
        "st": "DELIVERED",
        "mid": "m",
        "cid": "c",
        "ts": 1,
        "rid": "r",
        "sid": "s",
        "k": [],
    }
    v1 = {"due": 5, "st": "DELIVERED", "m": "m", "c": "c", "t": 1, "r": "r", "s": "s", "k": []}
    for stored in (v1, v2):
        read = read_scheduled_receipt(stored)
        assert "tp" not in read and read["mid"] == "m" and read["sid"] == "s"
        assert trace_headers.from_traceparent(read.get("tp")) is None


def test_version_1_and_2_schedule_entries_read_in_todays_shape() -> None:
    fields = {
        "due": 5,
        "status": "DELIVERED",
        "mid": "m",
        "cid": "c",
        "ts": 1,
        "rid": "r",
        "sid": "s",
        "keys": ["r:whatsapp"],
    }
    assert read_scheduled_receipt(v1_schedule_entry(**fields)) == v3_schedule_entry(**fields)
    # Version 3 is version 2 plus an optional traceparent: a version 2 entry reads as it is.
    v2 = read_scheduled_receipt(v2_schedule_entry(**fields))
    assert v2 == v2_schedule_entry(**fields) and "tp" not in v2
    assert read_scheduled_receipt(v3_schedule_entry(**fields)) == v3_schedule_entry(**fields)
