"""Paging a real RocksDB table (rocksdict, raw mode as faust opens it): seek + one slice, never a scan."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rocksdict

from streams.inspector.paging import OFFSET_KEY, TableReader, json_key, parse_cursor

ENTRIES = 100_000


def open_db(path: Path) -> Any:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    return rocksdict.Rdict(str(path), options=options)


@pytest.fixture(scope="module")
def big_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Any]]:
    """Two partition databases: 100,000 schedule-like entries in partition 0, a few in partition 1."""
    root = tmp_path_factory.mktemp("rocks")
    dbs = {0: open_db(root / "p0"), 1: open_db(root / "p1")}
    batch = rocksdict.WriteBatch(raw_mode=True)
    for i in range(ENTRIES):
        batch.put(json_key(f"p0:b:{17961480000 + i}"), json.dumps([{"due": i}]).encode())
    dbs[0].write(batch)
    dbs[0].put(OFFSET_KEY, b"99999")
    for i in range(3):
        dbs[1].put(json_key(f"p1:b:{i}"), b"[]")
    dbs[1].put(OFFSET_KEY, b"2")
    yield dbs
    for db in dbs.values():
        db.close()


def test_a_page_of_a_100000_entry_table_takes_well_under_a_second(big_table: dict[int, Any]) -> None:
    reader = TableReader(dbs=lambda: big_table)
    started = time.perf_counter()
    first = reader.page(limit=50)
    middle = reader.page(prefix="p0:b:1796152", limit=50)
    took = time.perf_counter() - started
    assert took < 1.0, took
    assert len(first.entries) == 50 and first.entries[0].key == "p0:b:17961480000"
    assert [e.key for e in middle.entries][:2] == ["p0:b:17961520000", "p0:b:17961520001"]
    assert reader.estimate(0) is not None and reader.estimate(0) > 50_000


def test_cursors_walk_every_entry_once_across_partitions_and_skip_faust_offsets(tmp_path: Path) -> None:
    dbs = {0: open_db(tmp_path / "a"), 2: open_db(tmp_path / "b")}
    for p, db in dbs.items():
        for i in range(7):
            db.put(json_key(f"k{p}-{i}"), json.dumps(i).encode())
        db.put(OFFSET_KEY, b"6")
    reader = TableReader(dbs=lambda: dbs)
    seen, cursor, pages = [], None, 0
    while True:
        page = reader.page(cursor=cursor, limit=3)
        seen += [(e.partition, e.key, e.value) for e in page.entries]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert parse_cursor(cursor)[0] in dbs
    assert seen == [(p, f"k{p}-{i}", i) for p in (0, 2) for i in range(7)]
    assert pages == 5
    assert [e.key for e in reader.page(partitions=[2], prefix="k2-", limit=2).entries] == ["k2-0", "k2-1"]
    assert reader.page(prefix="nothing").entries == []
    assert reader.get("k2-3").partition == 2
    assert reader.get("k2-3", partition=0) is None
    for db in dbs.values():
        db.close()


def test_a_bounded_scan_decodes_only_the_values_holding_the_needle(tmp_path: Path) -> None:
    db = open_db(tmp_path / "s")
    for i in range(20):
        db.put(
            json_key(f"p0:b:{i}"), json.dumps([{"mid": "wanted" if i in (3, 15) else f"other-{i}"}]).encode()
        )
    db.put(json_key("q:after"), json.dumps([{"mid": "wanted"}]).encode())  # outside the prefix
    db.put(OFFSET_KEY, b"20")
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Any:
        decoded.append(raw)
        return json.loads(raw)

    reader = TableReader(dbs=lambda: {0: db}, decode_value=decode)
    whole = reader.scan(partition=0, prefix="p0:b:", contains=b'"wanted"', max_scanned=100)
    assert [e.key for e in whole.entries] == ["p0:b:15", "p0:b:3"]  # sorted as stored bytes
    assert whole.scanned == 20 and whole.complete and len(decoded) == 2
    cut = reader.scan(partition=0, prefix="p0:b:", contains=b'"wanted"', max_scanned=5)
    assert cut.scanned == 5 and not cut.complete
    assert reader.scan(partition=1, prefix="p0:b:", contains=b"x", max_scanned=5).complete
    db.close()
