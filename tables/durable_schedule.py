"""A durable schedule kept in a changelog-backed table: entries in time buckets, one key per bucket.

Used by connectors for simulated DELIVERED/READ (the design card's section 4, "punctuation"):
entries are added while handling an outbound record and fired while handling a tick
record, both in the event context of one partition.

Which buckets exist is kept in memory (a sorted list per partition), rebuilt from the
table's keys when a partition is first used after an assignment: a stored index key would
be rewritten at almost every add and every firing, two changelog records per receipt.

Keys carry a per-partition namespace ("p3:b:<bucket>"): faust's RocksDB store reads and
writes the current event's partition, but deletes through a process-wide key -> partition
index that the last get, set or changelog recovery of that key updated. With the same key
in two partitions (two partitions with entries in one 100 ms bucket, or a partition
recovered after a failover), a delete in one partition removed the other partition's
bucket, whose receipts then never fired (found by the SIGKILL failover test).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from typing import Any

# Written by earlier versions as a stored bucket index; dropped when an index is rebuilt.
LEGACY_INDEX_KEY = "idx"


def scan_index(table: Any, *, namespace: str = "") -> list[int]:
    """The sorted bucket numbers stored under ``namespace`` (reads every key of the table's active partitions)."""
    prefix = f"{namespace}b:"
    buckets = []
    for key in list(table.keys()):
        if isinstance(key, str) and key.startswith(prefix):
            try:
                buckets.append(int(key[len(prefix) :]))
            except ValueError:
                continue
    return sorted(buckets)


class DurableSchedule:
    """Due-time ordered entries of one partition, stored in ``table`` (a faust Table in an event context).

    ``bucket_ms`` (default 100) is the time resolution: an entry fires at the first tick at
    or after the end of its bucket's start, so up to one bucket plus one tick late.
    ``index`` is the caller's in-memory sorted list of this partition's buckets, kept in
    step by every call; None scans the table for it.
    """

    def __init__(
        self,
        *,
        table: MutableMapping[str, Any],
        bucket_ms: int = 100,
        namespace: str = "",
        index: list[int] | None = None,
    ) -> None:
        self._table = table
        self._bucket_ms = bucket_ms
        self._ns = namespace
        self._index = scan_index(table, namespace=namespace) if index is None else index

    @property
    def index(self) -> list[int]:
        """The sorted bucket numbers of this partition (the list the caller passed in, kept in step)."""
        return self._index

    def _bucket_key(self, bucket: int) -> str:
        return f"{self._ns}b:{bucket}"

    def add_many(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Schedule entries, each a JSON-able dict with an integer ``due`` (ms since the epoch)."""
        if not entries:
            return
        by_bucket: dict[int, list[Mapping[str, Any]]] = {}
        for entry in entries:
            by_bucket.setdefault(int(entry["due"]) // self._bucket_ms, []).append(entry)
        index = self._index
        for bucket, new in by_bucket.items():
            key = self._bucket_key(bucket)
            pos = bisect.bisect_left(index, bucket)
            known = pos < len(index) and index[pos] == bucket
            # A bucket not in the index is not in the table: no lookup (a miss searches every partition's store).
            self._table[key] = (list(self._table.get(key) or []) if known else []) + new
            if not known:
                index.insert(pos, bucket)

    def due(self, now_ms: int) -> list[tuple[int, list[dict[str, Any]]]]:
        """Buckets whose entries are all due at ``now_ms``, oldest first, without removing them."""
        limit = now_ms // self._bucket_ms  # a bucket is due once its last millisecond has passed
        out = []
        for bucket in self._index:
            if bucket >= limit:
                break
            out.append((bucket, list(self._table.get(self._bucket_key(bucket)) or [])))
        return out

    def remove(self, buckets: list[int]) -> None:
        """Forget fired buckets (after their events were published and acked)."""
        if not buckets:
            return
        gone = set(buckets)
        for bucket in buckets:
            key = self._bucket_key(bucket)
            if key in self._table:
                del self._table[key]
        self._index[:] = [b for b in self._index if b not in gone]

    def next_due_ms(self, *, skip: Collection[int] = ()) -> int | None:
        """When the earliest bucket (not in ``skip``) becomes due, or None when nothing is scheduled."""
        for bucket in self._index:
            if bucket not in skip:
                return (bucket + 1) * self._bucket_ms
        return None

    def pending(self) -> int:
        """Number of buckets waiting (cheap; entries are not counted)."""
        return len(self._index)
