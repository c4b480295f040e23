"""Micro-benchmark: how long the inspector takes to page a 100,000-entry table (a real RocksDB, as faust opens it).

The table is built the way the inspector's unit test builds it: 100,000 schedule-like
entries in one partition database, a few in a second. Timed, each the best of
``--repeat`` runs: the first page, a page found by key prefix in the middle, the page at
the far end (by cursor, after walking ``--walk`` pages), and RocksDB's estimate of the
entry count. Prints the aiokafka yardstick of the same run beside them, as every figure
of this machine is quoted::

    .venv/bin/python bench/table_paging.py [--entries 100000] [--limit 50] [--repeat 5] [--walk 20]
        [--yardstick-messages 100000]  (0 skips the yardstick; it needs the local Kafka)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rocksdict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.yardstick import run_yardstick
from chat4all.settings import get_settings
from streams.inspector.paging import OFFSET_KEY, TableReader, json_key

BUCKET_BASE = 17961480000


def build(root: Path, entries: int) -> dict[int, Any]:
    """Partition 0 with ``entries`` schedule-like buckets, partition 1 with three."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    dbs = {p: rocksdict.Rdict(str(root / f"p{p}"), options=options) for p in (0, 1)}
    batch = rocksdict.WriteBatch(raw_mode=True)
    for i in range(entries):
        batch.put(json_key(f"p0:b:{BUCKET_BASE + i}"), json.dumps([{"due": i}]).encode())
    dbs[0].write(batch)
    dbs[0].put(OFFSET_KEY, str(entries - 1).encode())
    for i in range(3):
        dbs[1].put(json_key(f"p1:b:{i}"), b"[]")
    return dbs


def best_ms(run: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``run``, in ms."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--walk", type=int, default=20, help="pages walked by cursor before the timed one")
    parser.add_argument("--yardstick-messages", type=int, default=100_000, help="0 skips the yardstick")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="c4a-paging-") as tmp:
        started = time.perf_counter()
        dbs = build(Path(tmp), args.entries)
        built_s = time.perf_counter() - started
        reader = TableReader(dbs=lambda: dbs)
        middle = f"p0:b:{BUCKET_BASE + args.entries // 2}"[:-3]  # a prefix matching a thousand keys

        def walk() -> None:
            cursor = None
            for _ in range(args.walk):
                cursor = reader.page(cursor=cursor, limit=args.limit).next_cursor

        results = {
            "first page": best_ms(lambda: reader.page(limit=args.limit), args.repeat),
            f"page by prefix {middle}": best_ms(
                lambda: reader.page(prefix=middle, limit=args.limit), args.repeat
            ),
            f"{args.walk} pages by cursor": best_ms(walk, args.repeat),
            "entry count estimate": best_ms(lambda: reader.estimate(0), args.repeat),
        }
        estimate = reader.estimate(0)
        for db in dbs.values():
            db.close()

    print(
        f"Table paging, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.entries:,} entries "
        f"(built in {built_s:.1f} s, RocksDB estimates {estimate:,}), pages of {args.limit}, best of {args.repeat}:"
    )
    for name, ms in results.items():
        print(f"  {name}: {ms:.3f} ms")
    if args.yardstick_messages:
        yardstick = asyncio.run(
            run_yardstick(get_settings().kafka_bootstrap, messages=args.yardstick_messages)
        )
        print(f"Yardstick: {yardstick.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
