"""Pages of a table read straight from its RocksDB partition databases: seek, then iterate one slice.

A page never scans a table: it seeks each partition database to the cursor (or the key
prefix) and reads at most ``limit`` entries, so its cost does not grow with the table.
Keys and values are stored as faust serializes them (JSON); the cursor is the partition and
the raw key of the last entry shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# faust keeps the changelog offset it persisted in every partition database under this key.
OFFSET_KEY = b"__faust\0offset__"
MAX_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    """One table entry: its partition, key and value (decoded)."""

    partition: int
    key: Any
    value: Any


@dataclass(frozen=True)
class Page:
    """The entries of one page, and the cursor of the next (None at the end)."""

    entries: list[Entry]
    next_cursor: str | None


def cursor_of(partition: int, raw_key: bytes) -> str:
    """The cursor that resumes after ``raw_key`` of ``partition`` (URL-safe text)."""
    return f"{partition}.{raw_key.hex()}"


def parse_cursor(cursor: str) -> tuple[int, bytes]:
    """Partition and raw key of a cursor; ValueError when it is not one."""
    partition, _, hexkey = cursor.partition(".")
    return int(partition), bytes.fromhex(hexkey)


def json_key(key: Any) -> bytes:
    """A key as faust's JSON key serializer stores it."""
    return json.dumps(key, separators=(",", ":")).encode()


def prefix_bytes(prefix: str) -> bytes:
    """The stored-key prefix of every string key starting with ``prefix`` (its JSON without the closing quote)."""
    return json_key(prefix)[:-1]


@dataclass(frozen=True)
class Scan:
    """The entries a bounded scan found, how many it read, and whether it reached the end."""

    entries: list[Entry]
    scanned: int
    complete: bool


class TableReader:
    """Reads pages and single entries of one table from ``dbs()`` (partition -> rocksdict.Rdict in raw mode).

    ``dbs`` is a callable because faust opens and drops partition databases at rebalances.
    """

    def __init__(
        self,
        *,
        dbs: Callable[[], Mapping[int, Any]],
        decode_key: Callable[[bytes], Any] = json.loads,
        decode_value: Callable[[bytes], Any] = json.loads,
    ) -> None:
        self._dbs = dbs
        self._decode_key = decode_key
        self._decode_value = decode_value

    def partitions(self) -> list[int]:
        """The partitions whose databases this worker has open (active and standby)."""
        return sorted(self._dbs())

    def estimate(self, partition: int) -> int | None:
        """RocksDB's estimate of the number of keys in a partition (``rocksdb.estimate-num-keys``), None if not open."""
        db = self._dbs().get(partition)
        if db is None:
            return None
        try:
            return int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        except Exception:  # a database closed by a rebalance under our feet
            return None

    def get(self, key: Any, *, partition: int | None = None) -> Entry | None:
        """The entry of ``key`` in ``partition`` (or in whichever open partition has it)."""
        raw = json_key(key)
        dbs = self._dbs()
        candidates = [partition] if partition is not None else sorted(dbs)
        for p in candidates:
            db = dbs.get(p)
            if db is None:
                continue
            value = db.get(raw)
            if value is not None:
                return Entry(partition=p, key=key, value=self._decode_value(value))
        return None

    def page(
        self,
        *,
        partitions: Iterable[int] | None = None,
        prefix: str = "",
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Up to ``limit`` entries whose key starts with ``prefix``, partition by partition, after ``cursor``.

        Each partition database is sought once (to the cursor's key or the prefix) and read
        until the page is full or its keys leave the prefix.
        """
        limit = max(1, min(limit, MAX_LIMIT))
        dbs = self._dbs()
        wanted = sorted(dbs if partitions is None else set(partitions) & set(dbs))
        start_partition, start_key = parse_cursor(cursor) if cursor else (None, b"")
        low = prefix_bytes(prefix) if prefix else b""
        entries: list[Entry] = []
        last: tuple[int, bytes] | None = None
        for p in wanted:
            if start_partition is not None and p < start_partition:
                continue
            resume = start_key if p == start_partition else b""
            it = dbs[p].iter()
            it.seek(max(resume, low))
            while it.valid():
                raw = it.key()
                if low and not raw.startswith(low):
                    break
                if raw == OFFSET_KEY or (resume and raw == resume):
                    it.next()
                    continue
                if len(entries) == limit:
                    return Page(entries=entries, next_cursor=cursor_of(*last) if last else None)
                entries.append(
                    Entry(partition=p, key=self._decode_key(raw), value=self._decode_value(it.value()))
                )
                last = (p, raw)
                it.next()
        return Page(entries=entries, next_cursor=None)

    def scan(self, *, partition: int, prefix: str, contains: bytes, max_scanned: int) -> Scan:
        """The entries of ``partition`` under ``prefix`` whose stored value holds ``contains``, reading at most ``max_scanned``.

        Only the values that hold ``contains`` are decoded: the rest are skipped as bytes.
        """
        db = self._dbs().get(partition)
        if db is None:
            return Scan(entries=[], scanned=0, complete=True)
        low = prefix_bytes(prefix)
        found: list[Entry] = []
        scanned = 0
        it = db.iter()
        it.seek(low)
        while it.valid():
            raw = it.key()
            if not raw.startswith(low):
                break
            if raw != OFFSET_KEY:
                if scanned == max_scanned:
                    return Scan(entries=found, scanned=scanned, complete=False)
                scanned += 1
                value = it.value()
                if contains in value:
                    found.append(
                        Entry(partition=partition, key=self._decode_key(raw), value=self._decode_value(value))
                    )
            it.next()
        return Scan(entries=found, scanned=scanned, complete=True)
