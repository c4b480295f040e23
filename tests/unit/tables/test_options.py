"""The worker's RocksDB budget and TTL'd tables: one shared cache and memtable cap, changelogs that forget."""

from __future__ import annotations

from pathlib import Path

from faust.stores import rocksdb as faust_rocksdb

from agents.worker import build_worker
from chat4all.settings import Settings
from streams.bootstrap import changelog_specs
from tables import options


def test_ttl_tables_have_changelogs_that_delete_after_their_ttl() -> None:
    worker = build_worker(Settings(dedup_retention_hours=5), role="all", web=False)
    specs = changelog_specs(worker.app)
    assert specs["chat4all-router-routed-changelog"][1] == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(5 * 3600 * 1000),
    }
    assert specs["chat4all-receipt-finals-changelog"][1] == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(3 * 3600 * 1000),
    }
    # Tables holding what is in flight keep everything until it is deleted.
    assert specs["chat4all-receipt-states-changelog"][1] == {"cleanup.policy": "compact"}
    assert worker.router is not None and worker.router.dedup.table.options["ttl"] == 5 * 3600


def test_every_database_is_charged_to_one_shared_cache(tmp_path: Path) -> None:
    build_worker(Settings(), role="all", web=False)  # installs the budget
    assert faust_rocksdb.RocksDBOptions is options.BudgetedRocksDBOptions
    cache = options._shared["cache"]
    before = cache.get_usage()
    dbs = [
        options.BudgetedRocksDBOptions(ttl=3600, write_buffer_size=4 * 1024 * 1024).open(tmp_path / f"p{n}")
        for n in range(3)
    ]
    try:
        for n, db in enumerate(dbs):
            for i in range(2000):
                db[f"key-{n}-{i}".encode()] = b"x" * 200
        # The memtables of all three databases are accounted in the one cache.
        assert cache.get_usage() > before + 3 * 2000 * 200 * 0.5
        assert dbs[0][b"key-0-1"] == b"x" * 200
    finally:
        for db in dbs:
            db.close()


def _wal_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.log"))


def test_table_databases_write_no_wal_unless_asked(tmp_path: Path) -> None:
    written = {}
    for wal in (False, True):
        options.install_memory_budget(Settings(rocksdb_wal=wal))
        path = tmp_path / f"wal-{wal}"
        db = options.BudgetedRocksDBOptions(write_buffer_size=4 * 1024 * 1024).open(path)
        try:
            for i in range(500):
                db[f"key-{i}".encode()] = b"x" * 100
            assert db[b"key-7"] == b"x" * 100
            written[wal] = _wal_bytes(path)
        finally:
            db.close()
        # A clean close flushes the memtable: the writes are there when the database reopens.
        db = options.BudgetedRocksDBOptions(write_buffer_size=4 * 1024 * 1024).open(path)
        try:
            assert db[b"key-499"] == b"x" * 100
        finally:
            db.close()
    options.install_memory_budget(Settings())
    assert written[False] == 0
    assert written[True] > 500 * 100
