"""The router's dedup table: message ids it has routed, forgotten after dedup_retention_hours."""

from __future__ import annotations

from datetime import timedelta

from chat4all.settings import get_settings
from streams.app import app
from tables.options import rocksdb_options

WINDOW = timedelta(hours=1)

# A tumbling-window table keeps the bound without a cleanup job of our own: faust drops
# expired windows from the local store, and the changelog topic is compact+delete with
# retention = expires. Keyed by message id; the value is the routing record's offset + 1.
routed_ids = app.Table(
    "router-dedup",
    default=int,
    key_type=str,
    value_type=int,
    partitions=get_settings().topic_partitions,
    options=rocksdb_options(),
    help="Message ids the router has routed (tumbling 1 h windows, kept dedup_retention_hours).",
).tumbling(WINDOW, expires=timedelta(hours=get_settings().dedup_retention_hours))


def already_routed(message_id: str, *, offset: int) -> bool:
    """Whether another record (not the one at ``offset``) routed this message id in the current or previous window.

    The mark holds the offset of the record that routed it (plus one; 0 = none), so the
    same record replayed after a crash is not a duplicate and is routed again: its
    effects may not have reached Cassandra and the broker before the crash. Call inside
    the router's stream.
    """
    per_event = routed_ids.relative_to_stream()
    mark = per_event[message_id].current() or per_event[message_id].delta(WINDOW)
    return bool(mark) and mark != offset + 1


def mark_routed(message_id: str, *, offset: int) -> None:
    """Remember the message id, and the offset of the record routing it, in the window of the current event."""
    routed_ids.relative_to_stream()[message_id] = offset + 1


def unmark_routed(message_id: str) -> None:
    """Forget a mark (the message was dead-lettered after all); in the routing event's context."""
    routed_ids.relative_to_stream()[message_id] = 0
