"""Table values described for people: schedule buckets as times and receipts, receipt states per recipient and channel.

Every description is plain JSON (the pages' JSON twin carries it as it is); the raw value
stays beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.inspector.placement import SCHEDULE_SUFFIX, inner_key
from tables.scheduled_receipts import read_scheduled_receipt
from tables.state_machine import aggregate, is_settled, split_key

BUCKET_MS = 100  # tables/durable_schedule.py's default, which the connectors use


def iso_ms(ms: int | None) -> str | None:
    """Milliseconds since the epoch as an ISO 8601 UTC time with milliseconds (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def describe(table_name: str, key: Any, value: Any, *, dedup_retention_hours: int = 24) -> dict[str, Any]:
    """A description of one entry of ``table_name`` for people (``kind`` says its shape)."""
    try:
        if table_name.endswith(SCHEDULE_SUFFIX):
            return describe_bucket(str(inner_key(key)), value)
        if table_name == "receipt-states" and isinstance(value, dict):
            return {"kind": "receipt-state", **describe_entry(value)}
        if table_name == "receipt-finals" and isinstance(value, dict):
            return {
                "kind": "settled",
                "settling_offset": value.get("o"),
                **describe_entry(value.get("e") or {}),
            }
        if table_name == "router-routed":
            return describe_dedup(key, value, retention_hours=dedup_retention_hours)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"kind": "raw"}


def describe_bucket(key: str, value: Any) -> dict[str, Any]:
    """A schedule bucket (``p<partition>:b:<bucket>``): when it is due and the receipts it holds."""
    bucket = int(key.rpartition(":")[2])
    receipts = []
    for stored in value or []:
        e = read_scheduled_receipt(stored)
        receipts.append(
            {
                "message_id": e["mid"],
                "recipient_id": e["rid"],
                "status": e["st"],
                "due": iso_ms(e["due"]),
                "conversation_id": e["cid"],
            }
        )
    return {
        "kind": "schedule-bucket",
        "bucket": bucket,
        "starts": iso_ms(bucket * BUCKET_MS),
        "fires_from": iso_ms((bucket + 1) * BUCKET_MS),
        "receipts": receipts,
    }


def describe_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A status tracker entry (tables/state_machine.py's MessageEntry): one row per recipient and channel."""
    receipts = []
    for rkey, receipt in sorted((entry.get("r") or {}).items()):
        recipient_id, channel = split_key(rkey)
        receipts.append(
            {
                "recipient_id": recipient_id,
                "channel": channel,
                "status": receipt.get("s"),
                "delivered_at": iso_ms(receipt.get("d")),
                "read_at": iso_ms(receipt.get("rd")),
            }
        )
    overall = aggregate(entry) if entry.get("r") else None  # type: ignore[arg-type]
    return {
        "conversation_id": entry.get("cid"),
        "ts": iso_ms(entry.get("ts")),
        "sender_id": entry.get("sid"),
        "last_offset": entry.get("o"),
        "overall": overall.status if overall else None,
        "settled": bool(entry.get("r")) and is_settled(entry),  # type: ignore[arg-type]
        "receipts": receipts,
    }


def describe_dedup(key: Any, value: Any, *, retention_hours: int) -> dict[str, Any]:
    """A router-routed mark: the `messages` offset that routed the id, and how long it is remembered."""
    mark = int(value or 0)
    return {
        "kind": "dedup",
        "message_id": str(inner_key(key)),
        "routed_offset": mark - 1 if mark else None,
        "window": f"remembered at least {retention_hours} h after it was written (RocksDB TTL)",
    }
