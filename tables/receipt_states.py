"""The status tracker's tables: one entry per in-flight message with every recipient's receipt, and recently settled ones."""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

import faust

from chat4all.settings import Settings
from tables.options import rocksdb_options, with_ttl_changelog
from tables.state_machine import MessageEntry

SETTLED_TTL = timedelta(hours=3)


class SettledMarker(TypedDict):
    """A recently settled message in `receipt-finals` (key: message id)."""

    o: int  # offset of the `status-updates` record that settled it
    e: MessageEntry  # the final entry


class ReceiptTables:
    """``states``: message id -> MessageEntry (tables/state_machine.py); ``settled``: message id -> SettledMarker.

    ``states`` is keyed by message id, like `status-updates`. An entry leaves it once every
    receipt is READ or FAILED (nothing can change any more), which bounds it by the messages
    still in flight. ``settled`` remembers those messages with the final entry and the offset
    of the update that settled it: a late or replayed connector update for one of them must
    not re-create the entry from its receipt set (that would start again from SENT); it is
    counted stale, or, when it is the settling update itself replayed after a crash, its
    final state is written to Cassandra again. Kept three hours (RocksDB's TTL, and the
    changelog's retention), so this table stays bounded too; not a faust window, which would
    keep every key of the last three hours in memory as well.
    """

    def __init__(self, *, app: faust.App, settings: Settings) -> None:
        self.states = app.Table(
            "receipt-states",
            default=None,
            key_type=str,
            partitions=settings.topic_partitions,
            options=rocksdb_options(),
            help="Per message: conversation, ts, sender, last applied offset and every '<recipient>:<channel>' receipt.",
        )
        self.settled = with_ttl_changelog(
            app.Table(
                "receipt-finals",
                default=None,
                key_type=str,
                partitions=settings.topic_partitions,
                options=rocksdb_options(ttl=SETTLED_TTL),
                help="Message ids whose receipts all settled (READ/FAILED) in the last 3 h: the final entry and the settling offset.",
            ),
            SETTLED_TTL,
        )

    def recently_settled(self, message_id: str) -> SettledMarker | None:
        """The settled marker of a message, if it settled recently (inside the tracker's stream)."""
        marker = self.settled.get(message_id)
        return marker if isinstance(marker, dict) and marker else None

    def mark_settled(self, message_id: str, *, offset: int, entry: MessageEntry) -> None:
        """Remember that a message's receipts all settled: its final ``entry`` and the settling ``offset``."""
        marker: SettledMarker = {"o": offset, "e": entry}
        self.settled[message_id] = marker
