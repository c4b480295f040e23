"""Per-channel schedule tables of the simulated connectors: due DELIVERED/READ receipts (tables/durable_schedule.py layout).

A bucket's value is a list of ScheduledReceipt dicts. Their keys are short, because every add
encodes the whole bucket again and this changelog is the pipeline's largest (bench/table_values.py
prices long keys), and mean what they mean in the status tracker's entries
(tables/state_machine.py): "cid", "ts" and "sid" alike, while "s" (a receipt's status) and
"r" (a message's receipts) are the tracker's alone.
Version 3 adds "tp", the W3C traceparent of the span that scheduled the receipt (only when
that span is sampled), so the receipt fired later continues the message's trace (chat4all/trace_headers.py).
Version 2 entries are version 3 entries without "tp". Version 1 entries, without "v", used "m",
"c", "t", "r" and "s" for the message, the conversation, the message's ts_ms, the recipient and
the sender. The changelogs keep older entries until they fire, and read_scheduled_receipt reads
every version in the current shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

import faust

from chat4all.settings import Settings
from tables.options import rocksdb_options

VERSION = 3


class ScheduledReceipt(TypedDict):
    """One receipt of one recipient on the table's channel, due at ``due`` (version 3)."""

    v: int  # shape version (3; 2 has no "tp")
    due: int  # when it is due, ms since the epoch
    st: str  # the status it reports: DELIVERED or READ
    mid: str  # message id
    cid: str  # conversation id
    ts: int  # the message's ts_ms
    rid: str  # recipient id
    sid: str  # sender id
    k: list[str]  # the message's receipt keys ('<recipient_id>:<channel>')
    tp: NotRequired[str]  # traceparent of the span that scheduled it (a sampled one only)


def scheduled_receipt(
    *,
    due_ms: int,
    status: str,
    message_id: str,
    conversation_id: str,
    ts_ms: int,
    recipient_id: str,
    sender_id: str,
    receipt_keys: list[str],
    traceparent: str | None = None,
) -> ScheduledReceipt:
    """A schedule entry in the current shape; ``traceparent`` is left out when None (tracing off, or not sampled)."""
    entry: ScheduledReceipt = {
        "v": VERSION,
        "due": due_ms,
        "st": status,
        "mid": message_id,
        "cid": conversation_id,
        "ts": ts_ms,
        "rid": recipient_id,
        "sid": sender_id,
        "k": receipt_keys,
    }
    if traceparent is not None:
        entry["tp"] = traceparent
    return entry


def read_scheduled_receipt(stored: Mapping[str, Any]) -> ScheduledReceipt:
    """A stored schedule entry in the current shape: versions 3 and 2 as they are, version 1 renamed.

    A version 2 entry reads as a version 3 entry without a traceparent (``"tp" not in entry``).
    """
    if "v" in stored:
        return stored  # type: ignore[return-value]
    return scheduled_receipt(
        due_ms=stored["due"],
        status=stored["st"],
        message_id=stored["m"],
        conversation_id=stored["c"],
        ts_ms=stored["t"],
        recipient_id=stored["r"],
        sender_id=stored["s"],
        receipt_keys=stored["k"],
    )


def scheduled_receipts_table(app: faust.App, settings: Settings, channel: str) -> faust.Table:
    """The changelog-backed schedule of one channel's connector (same partitions as its outbound topic)."""
    return app.Table(
        f"{channel}-schedule",
        default=None,
        key_type=str,
        partitions=settings.topic_partitions,
        options=rocksdb_options(),
        help=f"{channel} connector: scheduled DELIVERED/READ receipts by 100 ms bucket ('p<partition>:b:<bucket>').",
    )
