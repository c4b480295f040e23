"""The router's dedup table: message ids it has routed, forgotten after dedup_retention_hours."""

from __future__ import annotations

from datetime import timedelta

import faust

from chat4all.settings import Settings
from tables.options import rocksdb_options

WINDOW = timedelta(hours=1)


class DedupTable:
    """Message id -> offset + 1 of the `messages` record that routed it (0 = none); use inside the router's stream.

    A tumbling-window table keeps the bound without a cleanup job of our own: faust drops
    expired windows from the local store, and the changelog topic is compact+delete with
    retention = expires. A lookup checks the event's window and the one before, so a
    duplicate up to an hour apart is caught.
    """

    def __init__(self, *, app: faust.App, settings: Settings) -> None:
        self.table = app.Table(
            "router-dedup",
            default=int,
            key_type=str,
            value_type=int,
            partitions=settings.topic_partitions,
            options=rocksdb_options(settings),
            help="Message ids the router has routed, with the routing record's offset + 1 (tumbling 1 h windows).",
        ).tumbling(WINDOW, expires=timedelta(hours=settings.dedup_retention_hours))

    def already_routed(self, message_id: str, *, offset: int) -> bool:
        """Whether another record (not the one at ``offset``) routed this message id in the current or previous window.

        The mark holds the offset of the record that routed it, so the same record replayed
        after a crash is not a duplicate and is routed again: its effects may not have
        reached Cassandra and the broker before the crash.
        """
        per_event = self.table.relative_to_stream()
        mark = per_event[message_id].current() or per_event[message_id].delta(WINDOW)
        return bool(mark) and mark != offset + 1

    def mark_routed(self, message_id: str, *, offset: int) -> None:
        """Remember the message id, and the offset of the record routing it, in the window of the current event."""
        self.table.relative_to_stream()[message_id] = offset + 1

    def unmark_routed(self, message_id: str) -> None:
        """Forget a mark (the message was dead-lettered after all); in the routing event's context."""
        self.table.relative_to_stream()[message_id] = 0
