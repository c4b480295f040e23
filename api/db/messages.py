"""The `messages` and `messages_by_id` tables as the API reads them: history pages and message lookups.

The worker writes both (streams/cassandra_io.py owns those statements); the API only reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import grpc

from api.db.cassandra import Cassandra

Context = grpc.aio.ServicerContext | None


@dataclass(frozen=True, kw_only=True)
class MessageRef:
    """A messages_by_id row: where a message lives and who sent it."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    ts: dt.datetime
    sender_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """One recipient's receipt on one channel (an entry of a message's receipts map)."""

    recipient_id: uuid.UUID
    channel: str | None
    status: str | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """A messages row: the message, its aggregate status and its receipts by "recipient:channel" key."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    ts: dt.datetime
    sender_id: uuid.UUID
    content: str | None
    file_id: uuid.UUID | None
    status: str | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None
    receipts: dict[str, Receipt]


_COLUMNS = (
    "conversation_id, ts, message_id, sender_id, content, file_id, status, delivered_at, read_at, receipts"
)


class MessageRepository:
    """A conversation's messages in (ts, message_id) order, and messages by id."""

    def __init__(self, *, cassandra: Cassandra) -> None:
        self._cassandra = cassandra
        statement = cassandra.statement
        self._by_id = statement(
            "SELECT message_id, conversation_id, ts, sender_id FROM {ks}.messages_by_id WHERE message_id = ?"
        )
        self._first = statement(f"SELECT {_COLUMNS} FROM {{ks}}.messages WHERE conversation_id = ? LIMIT ?")
        self._after = statement(
            f"SELECT {_COLUMNS} FROM {{ks}}.messages WHERE conversation_id = ? AND (ts, message_id) > (?, ?) LIMIT ?"
        )

    async def by_id(self, *, message_id: uuid.UUID, context: Context = None) -> MessageRef | None:
        """Where the message is, or None if it is not stored (yet)."""
        row = (await self._cassandra.run(self._by_id, (message_id,), context=context)).one()
        if row is None:
            return None
        return MessageRef(
            message_id=row.message_id, conversation_id=row.conversation_id, ts=row.ts, sender_id=row.sender_id
        )

    async def page(
        self,
        *,
        conversation_id: uuid.UUID,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
        context: Context = None,
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages of the conversation after ``after`` (ts, message_id; None: from the first)."""
        if after is None:
            rows = await self._cassandra.run(self._first, (conversation_id, limit), context=context)
        else:
            rows = await self._cassandra.run(self._after, (conversation_id, *after, limit), context=context)
        return [
            StoredMessage(
                message_id=row.message_id,
                conversation_id=row.conversation_id,
                ts=row.ts,
                sender_id=row.sender_id,
                content=row.content,
                file_id=row.file_id,
                status=row.status,
                delivered_at=row.delivered_at,
                read_at=row.read_at,
                receipts={
                    key: Receipt(
                        recipient_id=r.recipient_id,
                        channel=r.channel,
                        status=r.status,
                        delivered_at=r.delivered_at,
                        read_at=r.read_at,
                    )
                    for key, r in (row.receipts or {}).items()
                },
            )
            for row in rows
        ]
