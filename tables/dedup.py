"""The router's dedup table: message ids it has routed, forgotten after dedup_retention_hours."""

from __future__ import annotations

from datetime import timedelta

import faust

from chat4all.settings import Settings
from tables.options import rocksdb_options, with_ttl_changelog


class DedupTable:
    """Message id -> offset + 1 of the `messages` record that routed it (0 = none); use inside the router's stream.

    Bounded by RocksDB's TTL (``dedup_retention_hours``) rather than faust's windows: a
    windowed table keeps every key it wrote in memory until its window expires (a day of
    message ids, gigabytes at 300 msg/s) and costs two lookups per event. The changelog is
    compacted and deletes records older than the retention, so a recovery restores at most
    that much. An id is remembered at least the retention, a little longer until compaction
    drops it; a duplicate within the retention is always caught.
    """

    def __init__(self, *, app: faust.App, settings: Settings) -> None:
        ttl = timedelta(hours=settings.dedup_retention_hours)
        self.table = with_ttl_changelog(
            app.Table(
                "router-routed",
                default=int,
                key_type=str,
                value_type=int,
                partitions=settings.topic_partitions,
                options=rocksdb_options(ttl=ttl),
                help=f"Message ids the router has routed, with the routing record's offset + 1 (kept {settings.dedup_retention_hours} h).",
            ),
            ttl,
        )

    def already_routed(self, message_id: str, *, offset: int) -> bool:
        """Whether another record (not the one at ``offset``) routed this message id within the retention.

        The mark holds the offset of the record that routed it, so the same record replayed
        after a crash is not a duplicate and is routed again: its effects may not have
        reached Cassandra and the broker before the crash.
        """
        mark = self.table.get(message_id)
        return bool(mark) and mark != offset + 1

    def mark_routed(self, message_id: str, *, offset: int) -> None:
        """Remember the message id, and the offset of the record routing it."""
        self.table[message_id] = offset + 1

    def unmark_routed(self, message_id: str) -> None:
        """Forget a mark (the message was dead-lettered after all); in the routing event's context."""
        self.table[message_id] = 0
