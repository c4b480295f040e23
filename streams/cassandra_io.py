"""The pipeline's Cassandra repository: prepared statements, outage retries, short-lived lookups cache."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE

from chat4all.cassandra import aexecute, connect, is_outage
from chat4all.cassandra_batch import WriteBatcher
from chat4all.clock import to_ms
from chat4all.retry import retry_forever
from chat4all.settings import Settings
from chat4all.wire import Status
from streams import metrics
from streams.health import Health
from tables.state_machine import Aggregate, Change, split_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conversation:
    """The part of a conversations row the router needs."""

    conversation_id: str
    participant_ids: frozenset[str]


@dataclass(frozen=True)
class MessageReceipts:
    """The sender and the receipts map ("recipient:channel" -> receipt) of a messages row."""

    sender_id: str
    receipts: dict[str, Any]


@dataclass(frozen=True)
class StoredReceipt:
    """One receipt of a messages row (the receipts map), with its reason when a receipts row has one."""

    recipient_id: str
    channel: str
    status: str | None
    delivered_ms: int | None
    read_ms: int | None
    reason: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """A message as Cassandra holds it (messages_by_id, then its messages row and failed receipts rows)."""

    message_id: str
    conversation_id: str
    ts_ms: int
    sender_id: str | None
    content: str | None
    status: str | None
    delivered_ms: int | None
    read_ms: int | None
    receipts: dict[str, StoredReceipt]


def _ms(value: int | None) -> Any:
    # None means "not reached yet": leave the column untouched instead of writing a tombstone.
    return UNSET_VALUE if value is None else value


class PipelineRepository:
    """Everything the agents read from and write to Cassandra; every call waits out outages.

    The worker owns the statements it runs (the API's repositories in api/db/ own theirs, for
    the same tables): one object, because the three families share one session, one bound on
    requests in flight, one write batcher and one outage retry, and the router's path stays one
    attribute per call. What both sides share is in the core: the session factory, the bridge,
    the batcher and the outage classifier (chat4all/cassandra.py, chat4all/cassandra_batch.py).
    """

    def __init__(self, *, session: Session, settings: Settings, health: Health) -> None:
        self._session = session
        self._health = health
        self._settings = settings
        # One lookup per message on the router's path: a TTLCache get costs about a microsecond.
        ttl = settings.router_cache_seconds
        self._conversations: TTLCache[str, Conversation] = TTLCache(maxsize=100_000, ttl=ttl)
        self._users: TTLCache[str, dict[str, str]] = TTLCache(maxsize=200_000, ttl=ttl)
        self._limit = asyncio.Semaphore(settings.cassandra_concurrency)
        prep = session.prepare
        self._get_conversation = prep(
            "SELECT conversation_id, participant_ids FROM conversations WHERE conversation_id = ?"
        )
        self._get_user = prep("SELECT user_id, channels FROM users WHERE user_id = ?")
        self._insert_message = prep(
            "INSERT INTO messages (conversation_id, ts, message_id, sender_id, content, file_id, status, receipts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._insert_by_id = prep(
            "INSERT INTO messages_by_id (message_id, conversation_id, ts, sender_id) VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._update_receipt = prep(
            "UPDATE receipts USING TIMESTAMP ? SET conversation_id = ?, status = ?, delivered_at = ?, read_at = ?,"
            " reason = ?, updated_at = ? WHERE message_id = ? AND recipient_id = ? AND channel = ?"
        )
        self._update_message = prep(
            "UPDATE messages USING TIMESTAMP ? SET receipts = receipts + ?, status = ?, delivered_at = ?, read_at = ?"
            " WHERE conversation_id = ? AND ts = ? AND message_id = ?"
        )
        self._get_message = prep(
            "SELECT sender_id, receipts FROM messages WHERE conversation_id = ? AND ts = ? AND message_id = ?"
        )
        self._get_by_id = prep("SELECT conversation_id, ts FROM messages_by_id WHERE message_id = ?")
        self._get_stored = prep(
            "SELECT sender_id, content, status, delivered_at, read_at, receipts FROM messages"
            " WHERE conversation_id = ? AND ts = ? AND message_id = ?"
        )
        self._get_failed = prep("SELECT recipient_id, channel, reason FROM receipts WHERE message_id = ?")
        self._ping = prep("SELECT release_version FROM system.local")
        self._writes = WriteBatcher(
            session=session,
            run=lambda statement: self._run("write", statement),
            linger=settings.cassandra_batch_linger_ms / 1000,
            max_statements=settings.cassandra_batch_max_writes,
            on_batch=metrics.cassandra_batch_writes.observe,
        )

    async def _run(self, name: str, statement: Any, params: Any = None) -> Any:
        async def attempt() -> Any:
            async with self._limit:
                return await aexecute(self._session, statement, params)

        health = self._health

        def on_retry(exc: BaseException, attempt_no: int) -> None:
            health.cassandra_down(exc)
            metrics.cassandra_retries.labels(name).inc()
            if attempt_no == 1 or attempt_no % 10 == 0:
                logger.warning("Cassandra %s failed (attempt %d), retrying: %s", name, attempt_no, exc)

        return await retry_forever(
            attempt,
            is_outage=is_outage,
            largest=self._settings.cassandra_retry_max_seconds,
            on_retry=on_retry,
            on_success=health.cassandra_up,
        )

    async def ping(self) -> bool:
        """One cheap query; updates the health state either way."""
        try:
            async with self._limit:
                await aexecute(self._session, self._ping, timeout=3.0)
        except Exception as exc:
            self._health.cassandra_down(exc)
            return False
        self._health.cassandra_up()
        return True

    # --- router lookups ------------------------------------------------------

    async def conversation(self, conversation_id: str, *, fresh: bool = False) -> Conversation | None:
        """The conversation's participants, cached for ``router_cache_seconds``; misses are never cached."""
        if not fresh and (cached := self._conversations.get(conversation_id)) is not None:
            return cached
        rows = await self._run("read_conversation", self._get_conversation, (uuid.UUID(conversation_id),))
        row = rows.one()
        if row is None:
            self._conversations.pop(conversation_id, None)
            return None
        conv = Conversation(
            conversation_id=conversation_id,
            participant_ids=frozenset(str(p) for p in (row.participant_ids or ())),
        )
        self._conversations[conversation_id] = conv
        return conv

    async def user_channels(self, user_ids: list[str]) -> dict[str, dict[str, str]]:
        """Linked channels (name -> handle) of each user, read concurrently, cached briefly."""
        out: dict[str, dict[str, str]] = {}
        missing = []
        for uid in user_ids:
            cached = self._users.get(uid)
            if cached is not None:
                out[uid] = cached
            else:
                missing.append(uid)
        if missing:
            results = await asyncio.gather(
                *(self._run("read_user", self._get_user, (uuid.UUID(u),)) for u in missing)
            )
            for uid, rows in zip(missing, results, strict=True):
                row = rows.one()
                channels = dict(row.channels or {}) if row is not None else {}
                self._users[uid] = channels
                out[uid] = channels
        return out

    # --- writes --------------------------------------------------------------

    async def persist_message(
        self,
        *,
        message_id: str,
        conversation_id: str,
        sender_id: str,
        ts_ms: int,
        content: str,
        file_id: str | None,
        receipt_keys: list[str],
    ) -> None:
        """Write the message as SENT: the messages row (receipts map all SENT) and its messages_by_id lookup.

        Written at ``USING TIMESTAMP ts_ms*1000`` so that any later receipt update of the
        status tracker (written above it) wins, whatever order the writes land in.
        """
        mid, cid, sid = uuid.UUID(message_id), uuid.UUID(conversation_id), uuid.UUID(sender_id)
        fid = uuid.UUID(file_id) if file_id else None
        write_ts = ts_ms * 1000
        receipts = {}
        for key in receipt_keys:
            rid, channel = split_key(key)
            receipts[key] = (uuid.UUID(rid), channel, Status.SENT.value, None, None)
        # Both go through the write batcher: with the other writes of the moment, one request
        # per replica set (chat4all/cassandra_batch.py).
        await asyncio.gather(
            self._writes.write(
                self._insert_message,
                (cid, ts_ms, mid, sid, content, fid, Status.SENT.value, receipts, write_ts),
            ),
            self._writes.write(self._insert_by_id, (mid, cid, ts_ms, sid, write_ts)),
        )

    async def persist_receipts(
        self,
        *,
        message_id: str,
        conversation_id: str,
        ts_ms: int,
        changes: list[Change],
        overall: Aggregate,
        version: int,
        now_ms: int,
    ) -> None:
        """Write changed receipts into the messages row (receipts map entries and the aggregate).

        One statement per update: the messages row is what history reads. Only a FAILED
        receipt also gets a ``receipts`` row, which keeps its reason (the map's receipt
        type has no reason field).
        """
        mid, cid = uuid.UUID(message_id), uuid.UUID(conversation_id)
        write_ts = ts_ms * 1000 + 1 + version
        entries = {}
        failed = []
        for change in changes:
            rid, channel = split_key(change.key)
            ruid = uuid.UUID(rid)
            entries[change.key] = (ruid, channel, change.status, change.delivered_ms, change.read_ms)
            if change.reason:
                failed.append(
                    (
                        write_ts,
                        cid,
                        change.status,
                        _ms(change.delivered_ms),
                        _ms(change.read_ms),
                        change.reason,
                        now_ms,
                        mid,
                        ruid,
                        channel,
                    )
                )
        ops = [
            self._writes.write(
                self._update_message,
                (
                    write_ts,
                    entries,
                    overall.status,
                    _ms(overall.delivered_ms),
                    _ms(overall.read_ms),
                    cid,
                    ts_ms,
                    mid,
                ),
            )
        ]
        ops += [self._writes.write(self._update_receipt, params) for params in failed]
        await asyncio.gather(*ops)

    async def message_receipts(
        self, *, message_id: str, conversation_id: str, ts_ms: int
    ) -> MessageReceipts | None:
        """Sender and receipts map of a message row (for updates that arrive without the receipt set)."""
        rows = await self._run(
            "read_message", self._get_message, (uuid.UUID(conversation_id), ts_ms, uuid.UUID(message_id))
        )
        row = rows.one()
        if row is None or row.sender_id is None:
            return None
        return MessageReceipts(sender_id=str(row.sender_id), receipts=dict(row.receipts or {}))

    # --- inspector reads (one attempt each: a page reports an outage instead of waiting it out) ---

    async def _read_once(self, statement: Any, params: Any, *, timeout: float) -> Any:
        async with self._limit:
            return await aexecute(self._session, statement, params, timeout=timeout)

    async def message_conversation(self, message_id: str, *, timeout: float = 3.0) -> tuple[str, int] | None:
        """(conversation id, ts_ms) of a message from messages_by_id, or None when Cassandra has no such message."""
        row = (await self._read_once(self._get_by_id, (uuid.UUID(message_id),), timeout=timeout)).one()
        if row is None or row.conversation_id is None:
            return None
        return str(row.conversation_id), to_ms(row.ts)

    async def stored_message(self, message_id: str, *, timeout: float = 3.0) -> StoredMessage | None:
        """The message's messages row and the reasons of its failed receipts, or None when it is not stored."""
        found = await self.message_conversation(message_id, timeout=timeout)
        if found is None:
            return None
        conversation_id, ts_ms = found
        mid = uuid.UUID(message_id)
        row, failed = await asyncio.gather(
            self._read_once(self._get_stored, (uuid.UUID(conversation_id), ts_ms, mid), timeout=timeout),
            self._read_once(self._get_failed, (mid,), timeout=timeout),
        )
        row = row.one()
        if row is None:
            return None
        reasons = {f"{r.recipient_id}:{r.channel}": r.reason for r in failed}
        receipts = {
            key: StoredReceipt(
                recipient_id=str(r.recipient_id),
                channel=r.channel,
                status=r.status,
                delivered_ms=to_ms(r.delivered_at),
                read_ms=to_ms(r.read_at),
                reason=reasons.get(key),
            )
            for key, r in sorted((row.receipts or {}).items())
        }
        return StoredMessage(
            message_id=message_id,
            conversation_id=conversation_id,
            ts_ms=ts_ms,
            sender_id=str(row.sender_id) if row.sender_id else None,
            content=row.content,
            status=row.status,
            delivered_ms=to_ms(row.delivered_at),
            read_ms=to_ms(row.read_at),
            receipts=receipts,
        )


class PipelineRepositoryProvider:
    """The worker's one PipelineRepository, connected on first use (waiting out an outage); agents call it on start."""

    def __init__(self, *, settings: Settings, health: Health) -> None:
        self._settings = settings
        self._health = health
        self._repository: PipelineRepository | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> PipelineRepository | None:
        """The repository if this worker has connected already."""
        return self._repository

    async def __call__(self) -> PipelineRepository:
        """The repository, connecting first if needed (retrying until Cassandra answers)."""
        if self._repository is not None:
            return self._repository
        async with self._lock:
            if self._repository is None:
                settings, health = self._settings, self._health

                def open_repository() -> PipelineRepository:
                    # Blocking (connect, prepare): runs in a thread.
                    return PipelineRepository(session=connect(settings), settings=settings, health=health)

                self._repository = await retry_forever(
                    lambda: asyncio.to_thread(open_repository),
                    is_outage=lambda exc: True,
                    largest=settings.cassandra_retry_max_seconds,
                    on_retry=lambda exc, n: health.cassandra_down(exc),
                    on_success=health.cassandra_up,
                )
        return self._repository
