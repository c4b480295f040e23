"""The router's dedup table: message ids it has routed, forgotten after dedup_retention_hours."""

from __future__ import annotations

from datetime import timedelta

from chat4all.settings import get_settings
from streams.app import app
from tables.options import rocksdb_options

WINDOW = timedelta(hours=1)

# A tumbling-window table keeps the bound without a cleanup job of our own: faust drops
# expired windows from the local store, and the changelog topic is compact+delete with
# retention = expires. Keyed by message id; the value is 1 once routed.
routed_ids = app.Table(
    "router-dedup",
    default=int,
    key_type=str,
    value_type=int,
    partitions=get_settings().topic_partitions,
    options=rocksdb_options(),
    help="Message ids the router has routed (tumbling 1 h windows, kept dedup_retention_hours).",
).tumbling(WINDOW, expires=timedelta(hours=get_settings().dedup_retention_hours))


def already_routed(message_id: str) -> bool:
    """Whether this message id was routed in the current or previous window (call inside the router's stream)."""
    per_event = routed_ids.relative_to_stream()
    return bool(per_event[message_id].current() or per_event[message_id].delta(WINDOW))


def mark_routed(message_id: str) -> None:
    """Remember the message id in the window of the current event."""
    routed_ids.relative_to_stream()[message_id] = 1
