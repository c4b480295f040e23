"""The data of /ui/tables/<name> (a page of keys) and /ui/tables/<name>/<key> (one entry, from the worker that owns it).

Every RocksDB read (and the decoding and describing of what it read) runs in a thread and
touches one page: the event loop the agents share is never held by a page for more than the
hand-over.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from streams.inspector.assignment import GroupAssignment
from streams.inspector.paging import Entry, Page, TableReader
from streams.inspector.placement import (
    SCHEDULE_SUFFIX,
    Placement,
    UnknownPartition,
    partition_of,
    placement_of,
)
from streams.inspector.routing import fetch_json
from streams.inspector.sources import InspectorSources
from streams.inspector.values import describe

logger = logging.getLogger(__name__)

CASSANDRA_TIMEOUT = 3.0
# A schedule partition holds a few seconds of receipts; scanning it for one message stops here.
MAX_SCHEDULE_SCAN = 5000


class NoSuchTable(LookupError):
    """The worker has no table of that name."""


class TableInspector:
    """Reads this worker's tables and asks the owning worker for partitions it does not own."""

    def __init__(self, *, app: Any, sources: InspectorSources) -> None:
        self.app = app
        self.sources = sources
        self.partitions = sources.settings.topic_partitions

    # --- tables of this worker ---------------------------------------------

    def table_names(self) -> list[str]:
        """The tables this worker defines (its role's)."""
        return sorted(self.app.tables)

    def table(self, name: str) -> Any:
        """The faust table ``name``; NoSuchTable if this worker has none."""
        try:
            return self.app.tables[name]
        except KeyError:
            raise NoSuchTable(name) from None

    def reader(self, name: str) -> TableReader:
        """A reader of the partition databases the table's store has open."""
        store = self.table(name).data
        return TableReader(dbs=lambda: getattr(store, "_dbs", {}))

    def changelog_topic(self, name: str) -> str:
        """The name of the table's changelog topic (what the assignment lists), for other workers' tables too."""
        if name in self.app.tables:
            return str(self.app.tables[name].changelog_topic.get_topic_name())
        return f"{self.app.conf.id}-{name}-changelog"

    def group_table_names(self, group: GroupAssignment) -> list[str]:
        """The tables of every worker of the group (workers of other roles have other tables)."""
        head, tail = f"{self.app.conf.id}-", "-changelog"
        names = set(self.table_names())
        for topics in group.workers.values():
            names.update(t[len(head) : -len(tail)] for t in topics if t.startswith(head) and t.endswith(tail))
        return sorted(names)

    def help(self, name: str) -> str:
        """The table's help text."""
        return str(getattr(self.table(name), "help", "") or "")

    # --- one entry ---------------------------------------------------------

    async def locate(self, name: str, key: str, *, conversation_id: str | None = None) -> tuple[int, str]:
        """(partition, how it was found) of ``key``; the conversation of a router-routed key comes from Cassandra."""
        placement = placement_of(name)
        if placement is Placement.CONVERSATION and not conversation_id:
            conversation_id = await self.conversation_of(key)
            if conversation_id is None:
                raise UnknownPartition(
                    f"{name} is placed by the message's conversation, and Cassandra has no message {key!r}"
                    " (pass ?conversation_id=)"
                )
        return partition_of(name, key, partitions=self.partitions, conversation_id=conversation_id), (
            placement.value
        )

    async def conversation_of(self, message_id: str) -> str | None:
        """The conversation id of a message, from Cassandra's messages_by_id (None if absent or unreachable)."""
        if self.sources.cassandra is None:
            return None
        try:
            repository = await asyncio.wait_for(self.sources.cassandra(), CASSANDRA_TIMEOUT)
            found = await repository.message_conversation(message_id, timeout=CASSANDRA_TIMEOUT)
        except (TimeoutError, ValueError):
            return None
        except Exception as exc:  # an outage: the page says the partition is unknown
            logger.warning("inspector: Cassandra lookup failed: %s", type(exc).__name__)
            return None
        return found[0] if found else None

    async def entry(
        self,
        name: str,
        key: str,
        *,
        conversation_id: str | None = None,
        forwarded: bool = False,
        authorization: str | None = None,
        group: GroupAssignment | None = None,
    ) -> dict[str, Any]:
        """One entry as JSON: from this worker's store if it owns the key's partition, else from the owner's.

        ``group`` is the group's assignment when the caller has already read it.
        """
        changelog = self.changelog_topic(name)
        partition, placement = await self.locate(name, key, conversation_id=conversation_id)
        group = group or GroupAssignment.of(self.app)
        owner = group.owner(changelog, partition)
        if name not in self.app.tables and (owner is None or forwarded):
            raise NoSuchTable(name)
        if owner is not None and not group.is_self(owner) and not forwarded:
            query = {"conversation_id": conversation_id} if conversation_id else {}
            body = await fetch_json(
                self.app.http_client,
                worker_url=owner,
                path=f"/ui/tables/{name}/{key}",
                query=query,
                authorization=authorization,
            )
            body["routed_from"] = group.self_url
            return body
        found = await asyncio.to_thread(self.reader(name).get, key, partition=partition)
        return {
            "table": name,
            "key": key,
            "partition": partition,
            "placement": placement,
            "owner": owner,
            "answered_by": group.self_url,
            "role": self._role_of(group, partition, changelog),
            "found": found is not None,
            "value": found.value if found else None,
            "view": self.describe(name, found) if found else None,
        }

    def _role_of(self, group: GroupAssignment, partition: int, changelog: str) -> str:
        if partition in group.actives.get(changelog, ()):
            return "active"
        if partition in group.standbys.get(changelog, ()):
            return "standby"
        return "not assigned here"

    def describe(self, name: str, entry: Entry) -> dict[str, Any]:
        """The value of ``entry`` described for people (streams/inspector/values.py)."""
        return describe(
            name, entry.key, entry.value, dedup_retention_hours=self.sources.settings.dedup_retention_hours
        )

    # --- a page of keys ----------------------------------------------------

    async def browse(
        self,
        name: str,
        *,
        partition: int | None = None,
        prefix: str = "",
        cursor: str | None = None,
        limit: int = 50,
        forwarded: bool = False,
        authorization: str | None = None,
    ) -> dict[str, Any]:
        """A page of the table's keys on this worker, or of one partition from the worker that owns it."""
        changelog = self.changelog_topic(name)
        group = GroupAssignment.of(self.app)
        if partition is not None:
            if not 0 <= partition < self.partitions:
                raise ValueError(f"partition must be 0..{self.partitions - 1}")
            owner = group.owner(changelog, partition)
            local = name in self.app.tables and partition in self.reader(name).partitions()
            if owner is not None and not group.is_self(owner) and not forwarded and not local:
                query = {"partition": str(partition), "prefix": prefix, "limit": str(limit)}
                if cursor:
                    query["cursor"] = cursor
                body = await fetch_json(
                    self.app.http_client,
                    worker_url=owner,
                    path=f"/ui/tables/{name}",
                    query=query,
                    authorization=authorization,
                )
                body["routed_from"] = group.self_url
                return body
        reader = self.reader(name)  # NoSuchTable when neither here nor routed
        partitions = [partition] if partition is not None else None

        def read() -> tuple[Page, list[dict[str, Any]]]:
            # Reading and describing a page are both done off the loop: a page of 500 entries
            # is several milliseconds of decoding and describing.
            page = reader.page(partitions=partitions, prefix=prefix, cursor=cursor, limit=limit)
            return page, [self.describe(name, e) for e in page.entries]

        page, views = await asyncio.to_thread(read)
        return {
            "table": name,
            "help": self.help(name),
            "answered_by": group.self_url,
            "partition": partition,
            "prefix": prefix,
            "cursor": cursor,
            "limit": limit,
            "partitions": {
                str(p): self._role_of(group, p, changelog) for p in (partitions or reader.partitions())
            },
            "entries": [
                {
                    "partition": e.partition,
                    "key": e.key,
                    "role": self._role_of(group, e.partition, changelog),
                    "view": view,
                    "value": e.value,
                }
                for e, view in zip(page.entries, views, strict=True)
            ],
            "next_cursor": page.next_cursor,
        }

    # --- a message's pending schedule entries --------------------------------

    async def pending_receipts(
        self,
        name: str,
        *,
        partition: int,
        message_id: str,
        forwarded: bool = False,
        authorization: str | None = None,
        group: GroupAssignment | None = None,
    ) -> dict[str, Any]:
        """The receipts scheduled for ``message_id`` in partition ``partition`` of a schedule table (bounded scan)."""
        if not name.endswith(SCHEDULE_SUFFIX):
            raise NoSuchTable(f"{name} is not a schedule table")
        changelog = self.changelog_topic(name)
        group = group or GroupAssignment.of(self.app)
        owner = group.owner(changelog, partition)
        if owner is not None and not group.is_self(owner) and not forwarded:
            body = await fetch_json(
                self.app.http_client,
                worker_url=owner,
                path=f"/ui/tables/{name}",
                query={"partition": str(partition), "message_id": message_id, "limit": "1"},
                authorization=authorization,
            )
            body["routed_from"] = group.self_url
            return body
        reader = self.reader(name)

        def scan() -> tuple[list[dict[str, Any]], int, bool]:
            # A bucket holds the message id as a JSON string: only buckets whose stored bytes
            # hold it are decoded and described.
            seen = reader.scan(
                partition=partition,
                prefix=f"p{partition}:b:",
                contains=json.dumps(message_id).encode(),
                max_scanned=MAX_SCHEDULE_SCAN,
            )
            found = [
                {"key": e.key, **receipt}
                for e in seen.entries
                for receipt in describe(name, e.key, e.value).get("receipts", [])
                if receipt["message_id"] == message_id
            ]
            return found, seen.scanned, seen.complete

        found, scanned, complete = await asyncio.to_thread(scan)
        return {
            "table": name,
            "partition": partition,
            "message_id": message_id,
            "answered_by": group.self_url,
            "owner": owner,
            "pending": found,
            "buckets_scanned": scanned,
            "complete": complete,
        }
