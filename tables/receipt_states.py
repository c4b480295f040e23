"""The status tracker's table: one entry per in-flight message with every recipient's receipt (tables/state_machine.py)."""

from __future__ import annotations

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
