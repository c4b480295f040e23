"""The data of /ui/: this worker, its assignment, its tables per partition, its connectors, the group's other workers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TP

from streams.health import kafka_state
from streams.inspector.assignment import GroupAssignment
from streams.inspector.sources import InspectorSources
from streams.inspector.table_pages import TableInspector

logger = logging.getLogger(__name__)

OFFSETS_TIMEOUT = 2.0


async def _end_offsets(app: Any, tps: list[TP]) -> dict[TP, int]:
    """The end offsets of ``tps`` from the broker ({} when it does not answer in time)."""
    if not tps:
        return {}
    try:
        return dict(await asyncio.wait_for(app.consumer.highwaters(*tps), OFFSETS_TIMEOUT))
    except Exception as exc:  # consumer not started, broker slow: the page shows no end offsets
        logger.debug("inspector: end offsets unavailable: %s", type(exc).__name__)
        return {}


def records_behind(*, changelog_end: int | None, local_offset: int | None) -> int | None:
    """How many changelog records this worker has not applied: recovery progress (None without the end offset).

    The changelog's end is the offset after its last record; ``local_offset`` is the last
    one applied, None when none is (an empty changelog partition is then 0 behind).
    """
    if changelog_end is None:
        return None
    return max(changelog_end - (local_offset + 1 if local_offset is not None else 0), 0)


def _persisted_offset(store: Any, tp: TP) -> int | None:
    # faust's RocksDB store keeps, in each partition database under its offset key, the
    # offset of the last changelog record it holds: set when a write's changelog record is
    # acked (at commit under exactly_once) and when recovery applies a batch. None until the
    # first one, so an active partition whose changelog is empty has none.
    # Only for databases already open: faust's persisted_offset opens a missing one.
    db = getattr(store, "_dbs", {}).get(tp.partition)
    if db is None:
        return None
    raw = db.get(store.offset_key)
    return int(raw) if raw is not None else None


async def worker_overview(*, app: Any, sources: InspectorSources, tables: TableInspector) -> dict[str, Any]:
    """Everything /ui/ shows, as JSON."""
    group = GroupAssignment.of(app)
    health = sources.health
    sources_tps = [TP(t, p) for t, ps in group.actives.items() for p in ps]
    table_rows = []
    changelog_tps: list[TP] = []
    for name in tables.table_names():
        changelog = tables.changelog_topic(name)
        reader = tables.reader(name)
        open_partitions = reader.partitions()
        table_rows.append((name, changelog, reader, open_partitions))
        changelog_tps += [TP(changelog, p) for p in open_partitions]
    changelog_names = {row[1] for row in table_rows}
    source_tps = [tp for tp in sources_tps if tp.topic not in changelog_names]
    ends = await _end_offsets(app, source_tps + changelog_tps)
    monitor = app.monitor
    committed = dict(getattr(monitor, "tp_committed_offsets", None) or {})
    # What faust's standby recovery has read of each standby changelog partition: it writes
    # it to RocksDB in batches (the table's standby_buffer_size) and at rebalances.
    recovery = getattr(app.tables, "_recovery", None)
    standby_read = dict(getattr(recovery, "standby_offsets", None) or {})

    def table_stats() -> list[dict[str, Any]]:
        out = []
        for name, changelog, reader, open_partitions in table_rows:
            store = tables.table(name).data
            parts = []
            for p in open_partitions:
                tp = TP(changelog, p)
                local = _persisted_offset(store, tp)
                end = ends.get(tp)
                role = (
                    "active"
                    if p in group.actives.get(changelog, ())
                    else "standby"
                    if p in group.standbys.get(changelog, ())
                    else "not assigned"
                )
                # faust holds -1 for a standby that has read nothing yet.
                read = standby_read.get(tp) if role == "standby" else None
                parts.append(
                    {
                        "partition": p,
                        "role": role,
                        "estimated_entries": reader.estimate(p),
                        "local_offset": local,
                        "changelog_end": end,
                        "standby_read_offset": read if read is not None and read >= 0 else None,
                        "behind": records_behind(changelog_end=end, local_offset=local),
                    }
                )
            out.append({"name": name, "help": tables.help(name), "changelog": changelog, "partitions": parts})
        return out

    # RocksDB property reads and offset gets: quick, but one per partition; off the loop.
    table_info = await asyncio.to_thread(table_stats)
    lag = []
    for tp in sorted(source_tps):
        end, done = ends.get(tp), committed.get(tp)
        lag.append(
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "end": end,
                "committed": done,
                "lag": (end - done) if end is not None and done is not None else None,
            }
        )
    return {
        "worker": {
            "url": group.self_url,
            "app_id": app.conf.id,
            "role": sources.role,
            "id": f"{app.conf.id}@{group.self_url}",
        },
        "health": {
            "cassandra": {"ok": health.cassandra_ok, "error": health.cassandra_error},
            "kafka": kafka_state(app),
        },
        "assignment": {"active": group.actives, "standby": group.standbys},
        "tables": table_info,
        "consumer_lag": lag,
        "connectors": sources.connectors_state() if sources.connectors_state else None,
        "workers": [
            {"url": url, "self": group.is_self(url), "topics": topics, "inspector": f"{url.rstrip('/')}/ui/"}
            for url, topics in group.workers.items()
        ],
    }
