"""The data of /ui/messages/<message_id>: the tables' view of one message beside its Cassandra row.

Each table part comes from the worker that owns its partition (through TableInspector,
forwarded when needed), the Cassandra row from this worker's session; ``divergences``
lists the receipts on which the two disagree.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import asdict
from typing import Any

from streams.inspector.assignment import GroupAssignment
from streams.inspector.placement import SCHEDULE_SUFFIX, key_partition
from streams.inspector.routing import RoutingFailed
from streams.inspector.sources import InspectorSources
from streams.inspector.table_pages import CASSANDRA_TIMEOUT, TableInspector
from streams.inspector.values import iso_ms

logger = logging.getLogger(__name__)

HIDDEN = "(hidden: set CHAT4ALL_UI_SHOW_CONTENT=true to show message content)"


def valid_message_id(message_id: str) -> bool:
    """Whether ``message_id`` is a UUID (every message id is)."""
    try:
        uuid.UUID(message_id)
    except ValueError:
        return False
    return True


async def _cassandra_row(sources: InspectorSources, message_id: str) -> dict[str, Any]:
    if sources.cassandra is None:
        return {"available": False, "error": "no Cassandra access on this worker"}
    try:
        repository = await asyncio.wait_for(sources.cassandra(), CASSANDRA_TIMEOUT)
        stored = await repository.stored_message(message_id, timeout=CASSANDRA_TIMEOUT)
    except Exception as exc:  # an outage or a timeout: the page says so
        return {"available": False, "error": f"Cassandra unavailable: {type(exc).__name__}"}
    if stored is None:
        return {"available": True, "found": False}
    row = asdict(stored)
    content = row.pop("content")
    row["content"] = content if sources.settings.ui_show_content else HIDDEN
    row["content_shown"] = sources.settings.ui_show_content
    row["content_chars"] = len(content or "")
    row["ts"] = iso_ms(row.pop("ts_ms"))
    row["delivered_at"] = iso_ms(row.pop("delivered_ms"))
    row["read_at"] = iso_ms(row.pop("read_ms"))
    row["receipts"] = [
        {
            "recipient_id": r["recipient_id"],
            "channel": r["channel"],
            "status": r["status"],
            "delivered_at": iso_ms(r["delivered_ms"]),
            "read_at": iso_ms(r["read_ms"]),
            "reason": r["reason"],
        }
        for r in row["receipts"].values()
    ]
    return {"available": True, "found": True, **row}


async def _part(coro: Any) -> dict[str, Any]:
    try:
        return await coro
    except RoutingFailed as exc:
        return {"error": str(exc)}


def divergences(table_view: dict[str, Any] | None, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Receipts whose status differs between the table's view and the Cassandra row."""
    if not table_view or not row.get("found"):
        return []
    stored = {(r["recipient_id"], r["channel"]): r["status"] for r in row.get("receipts", [])}
    out = []
    for r in table_view.get("receipts", []):
        where = (r["recipient_id"], r["channel"])
        if stored.get(where) != r["status"]:
            out.append(
                {
                    "recipient_id": where[0],
                    "channel": where[1],
                    "table": r["status"],
                    "cassandra": stored.get(where),
                }
            )
    return out


async def message_state(
    *, message_id: str, tables: TableInspector, sources: InspectorSources, authorization: str | None = None
) -> dict[str, Any]:
    """Everything /ui/messages/<message_id> shows, as JSON."""
    group = GroupAssignment.of(tables.app)  # read once, for every part of the page
    names = tables.group_table_names(group)
    partition = key_partition(message_id, tables.partitions)
    parts: dict[str, Any] = {}
    jobs: dict[str, Any] = {}
    for name in ("receipt-states", "receipt-finals"):
        if name in names:
            jobs[name] = tables.entry(name, message_id, authorization=authorization, group=group)
    for name in names:
        if name.endswith(SCHEDULE_SUFFIX):
            # The outbound topics are keyed by message id too: the same partition number.
            jobs[name] = tables.pending_receipts(
                name, partition=partition, message_id=message_id, authorization=authorization, group=group
            )
    results = await asyncio.gather(*(_part(j) for j in jobs.values()), _cassandra_row(sources, message_id))
    parts = dict(zip(jobs, results[:-1], strict=True))
    row = results[-1]
    state, final = parts.get("receipt-states"), parts.get("receipt-finals")
    view = None
    settled = False
    if final and final.get("found"):
        view, settled = final.get("view"), True
    elif state and state.get("found"):
        view = state.get("view")
    pending = [
        {**p, "table": name}
        for name, part in parts.items()
        if name.endswith(SCHEDULE_SUFFIX)
        for p in part.get("pending", [])
    ]
    return {
        "message_id": message_id,
        "partition": partition,
        "answered_by": tables.app.conf.canonical_url and str(tables.app.conf.canonical_url),
        "settled": settled,
        "in_tables": view is not None,
        "state": view,
        "pending": sorted(pending, key=lambda p: p["due"] or ""),
        "parts": {
            name: {
                k: part.get(k)
                for k in ("answered_by", "routed_from", "found", "error", "complete")
                if k in part
            }
            for name, part in parts.items()
        },
        "cassandra": row,
        "divergences": divergences(view, row),
    }
