"""The `client_messages` table: the lightweight-transaction claims of client_message_ids (api/idempotency.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import grpc

from api.db.cassandra import Cassandra
from chat4all.clock import to_ms

Context = grpc.aio.ServicerContext | None


@dataclass(frozen=True, kw_only=True)
class ClientMessageClaim:
    """The message an earlier send claimed a client_message_id for."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    ts_ms: int
    fingerprint: str | None  # None for rows written before fingerprints were stored


class ClientMessageRepository:
    """Claims of (sender, client_message_id); Cassandra's LWT decides who holds one."""

    def __init__(self, *, cassandra: Cassandra) -> None:
        self._cassandra = cassandra
        self._claim = cassandra.statement(
            "INSERT INTO {ks}.client_messages (sender_id, client_message_id, message_id, conversation_id, ts, fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        self._release = cassandra.statement(
            "DELETE FROM {ks}.client_messages WHERE sender_id = ? AND client_message_id = ? IF message_id = ?"
        )

    async def claim(
        self,
        *,
        sender_id: uuid.UUID,
        client_message_id: str,
        message_id: uuid.UUID,
        conversation_id: uuid.UUID,
        ts: dt.datetime,
        fingerprint: str | None,
        context: Context = None,
    ) -> ClientMessageClaim | None:
        """Claim the key for ``message_id``: None if the claim is ours, else the earlier claim that holds it."""
        row = (
            await self._cassandra.run(
                self._claim,
                (sender_id, client_message_id, message_id, conversation_id, ts, fingerprint),
                context=context,
            )
        ).one()
        if row.applied:
            return None
        return ClientMessageClaim(
            message_id=row.message_id,
            conversation_id=row.conversation_id,
            ts_ms=to_ms(row.ts),
            fingerprint=getattr(row, "fingerprint", None),
        )

    async def release(
        self, *, sender_id: uuid.UUID, client_message_id: str, message_id: uuid.UUID, context: Context = None
    ) -> None:
        """Drop the claim if it is still ``message_id``'s."""
        await self._cassandra.run(self._release, (sender_id, client_message_id, message_id), context=context)
