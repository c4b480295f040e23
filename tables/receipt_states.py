"""The status tracker's table: one entry per in-flight message with every recipient's receipt (tables/state_machine.py)."""

from __future__ import annotations

from datetime import timedelta

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

# Messages whose entry left receipt_states because every receipt settled. A late or replayed
# connector update for one of them must not re-create the entry from its receipt set (that
# would start again from SENT): it is recognised here and counted stale. Kept two windows
# at least, then forgotten by faust's window expiry, so this table stays bounded too.
settled_ids = app.Table(
    "receipt-settled",
    default=int,
    key_type=str,
    value_type=int,
    partitions=get_settings().topic_partitions,
    options=rocksdb_options(),
    help="Message ids whose receipts all settled (READ/FAILED) recently.",
).tumbling(SETTLED_WINDOW, expires=SETTLED_WINDOW * 3)


def recently_settled(message_id: str) -> bool:
    """Whether this message's receipts settled in the current or previous window (inside the tracker's stream)."""
    per_event = settled_ids.relative_to_stream()
    return bool(per_event[message_id].current() or per_event[message_id].delta(SETTLED_WINDOW))


def mark_settled(message_id: str) -> None:
    settled_ids.relative_to_stream()[message_id] = 1
