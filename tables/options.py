"""RocksDB options shared by every table: a small block cache instead of faust's 2 GiB per partition."""

from __future__ import annotations

from typing import Any

from chat4all.settings import Settings


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    """A fresh options dict (faust's store pops keys from it, so never share one between tables)."""
    cache = settings.rocksdb_block_cache_mb * 1024 * 1024
    return {
        "block_cache_size": cache,
        "block_cache_compressed_size": max(1024 * 1024, cache // 4),
        # The default 64 MiB write buffer x 3 per partition is far more than these tables hold.
        "write_buffer_size": 4 * 1024 * 1024,
        "max_write_buffer_number": 2,
    }
