"""The status tracker's table: one entry per in-flight message with every recipient's receipt (tables/state_machine.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chat4all.settings import get_settings
from streams.app import app
from tables.options import rocksdb_options

# Keyed by message id, like `status-updates`. An entry leaves the table once every receipt
# is READ or FAILED (nothing can change any more), which bounds the table by the
# messages still in flight; a late update after that is checked against Cassandra.
receipt_states = app.Table(
    "receipt-states",
    default=None,
    key_type=str,
    partitions=get_settings().topic_partitions,
    options=rocksdb_options(),
    help="Per message: conversation, ts, sender and every '<recipient>:<channel>' receipt (status, delivered, read).",
)

SETTLED_WINDOW = timedelta(hours=1)

# Messages whose entry left receipt_states because every receipt settled, with the final entry
# and the offset of the update that settled it. A late or replayed connector update for one
# of them must not re-create the entry from its receipt set (that would start again from
# SENT): it is recognised here and counted stale, or, when it is the settling update itself
# replayed after a crash, its final state is written to Cassandra again. Kept two windows at
# least, then forgotten by faust's window expiry, so this table stays bounded too.
settled_ids = app.Table(
    "receipt-settled",
    default=dict,  # an empty dict: not settled
    key_type=str,
    partitions=get_settings().topic_partitions,
    options=rocksdb_options(),
    help="Message ids whose receipts all settled (READ/FAILED) recently: the final entry and the settling offset.",
).tumbling(SETTLED_WINDOW, expires=SETTLED_WINDOW * 3)


def recently_settled(message_id: str) -> dict[str, Any] | None:
    """The settled marker ({"o": offset, "e": final entry}) of the current or previous window (inside the tracker's stream)."""
    per_event = settled_ids.relative_to_stream()
    marker = per_event[message_id].current() or per_event[message_id].delta(SETTLED_WINDOW)
    return marker if isinstance(marker, dict) and marker else None


def mark_settled(message_id: str, *, offset: int, entry: dict[str, Any]) -> None:
    settled_ids.relative_to_stream()[message_id] = {"o": offset, "e": entry}
