"""RocksDB options of every table: one memory budget per worker process, and TTL'd tables in place of windows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from faust.stores import rocksdb as faust_rocksdb

from chat4all.settings import Settings

_shared: dict[str, Any] = {}


def rocksdb_options(*, ttl: timedelta | None = None) -> dict[str, Any]:
    """A fresh options dict (faust's store pops keys from it, so never share one between tables).

    ``ttl`` opens the table's databases with RocksDB's TTL: an entry older than it is dropped
    when compaction reaches it (it may be read a while longer; never sooner).
    """
    options: dict[str, Any] = {
        # Per database only the size of one memtable; the memory of all of them together is
        # capped by the process-wide budget installed below.
        "write_buffer_size": 4 * 1024 * 1024,
        "max_write_buffer_number": 2,
    }
    if ttl is not None:
        options["ttl"] = int(ttl.total_seconds())
    return options


def with_ttl_changelog(table: Any, ttl: timedelta) -> Any:
    """Give a TTL'd table a changelog that is compacted and deletes records older than ``ttl``, as a window table's is.

    Without it a recovery would restore every id the table ever held (the changelog of a
    plain table is compacted only), long after RocksDB's TTL dropped them locally.
    """
    table.changelog_topic = table._new_changelog_topic(
        retention=ttl.total_seconds(), compacting=True, deleting=True
    )
    return table


class BudgetedRocksDBOptions(faust_rocksdb.RocksDBOptions):
    """faust's RocksDB options, with every database of the process sharing one block cache and one memtable budget.

    faust gives each partition database its own block cache and memtables: with 12
    partitions and five tables, 60 databases whose memory grows for many minutes under load
    (two 4 MiB memtables and an 8 MiB cache each, about 1 GiB in all). One LRU cache of
    ``rocksdb_memory_mb`` and a write-buffer manager of ``rocksdb_write_buffer_mb``
    charged to that cache bound all of it with one number, however many partitions a
    worker owns.
    """

    def open(self, path: Any, *, read_only: bool = False) -> Any:
        """Open a partition database; without the write-ahead log unless ``rocksdb_wal`` is set.

        A table's changelog is its log: RocksDB's own WAL is a second one, a write() system
        call per put (about 1,500 a second at 300 msg/s, a fifth of a table write's cost).
        Without it a crash loses the memtables' writes since the last flush, and the
        database reopens as it was at that flush: table entries and faust's persisted
        changelog offset (a key of the same database, written after the entries it covers)
        from the same moment, so the recovery reads the changelog again from that offset
        and nothing is missing. A clean close flushes the memtables first.
        """
        db = super().open(path, read_only=read_only)
        if self.use_rocksdict and not _shared.get("wal", True):
            write_options = faust_rocksdb.rocksdict.WriteOptions()
            write_options.disable_wal = True
            db.set_write_options(write_options)
        return db

    def as_options(self) -> Any:
        """Faust's options with the shared block cache and write-buffer manager, and a bounded info log."""
        options = super().as_options()
        if not self.use_rocksdict:
            return options
        cache, manager = _shared["cache"], _shared["write_buffers"]
        tables = faust_rocksdb.rocksdict.BlockBasedOptions()
        tables.set_bloom_filter(self.bloom_filter_size, block_based=True)
        tables.set_block_cache(cache)
        tables.set_index_type(faust_rocksdb.rocksdict.BlockBasedIndexType.binary_search())
        # Index and filter blocks live in the cache too, so the budget covers them.
        tables.set_cache_index_and_filter_blocks(True)
        options.set_block_based_table_factory(tables)
        options.set_write_buffer_manager(manager)
        # RocksDB's info log (LOG) grows without a bound by default: about 1 MiB per database
        # in four minutes at 300 msg/s. Two files of 256 KiB each are plenty to debug from.
        options.set_max_log_file_size(256 * 1024)
        options.set_keep_log_file_num(2)
        return options


def memory_in_use() -> tuple[int, int] | None:
    """Bytes the shared RocksDB cache holds (memtables included) and of those the memtables; None before install."""
    if "cache" not in _shared:
        return None
    return _shared["cache"].get_usage(), _shared["write_buffers"].get_usage()


def install_memory_budget(settings: Settings) -> None:
    """Make every RocksDB table of this process use one shared cache and memtable budget (idempotent)."""
    rocksdict = faust_rocksdb.rocksdict
    if rocksdict is None:
        return
    _shared["wal"] = settings.rocksdb_wal
    if "cache" not in _shared:
        cache = rocksdict.Cache(settings.rocksdb_memory_mb * 1024 * 1024)
        _shared["cache"] = cache
        _shared["write_buffers"] = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            settings.rocksdb_write_buffer_mb * 1024 * 1024,
            False,
            cache,
        )
    # faust's Store builds its options from this module attribute when a table opens.
    faust_rocksdb.RocksDBOptions = BudgetedRocksDBOptions  # type: ignore[misc]
