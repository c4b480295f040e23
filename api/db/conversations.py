"""The `conversations`, `conversations_by_user` and `private_conversations` tables."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import grpc
from cassandra.query import BatchType

from api.db.cassandra import Cassandra

Context = grpc.aio.ServicerContext | None


@dataclass(frozen=True, kw_only=True)
class ConversationRow:
    """A conversation as the API reads and writes it (participants never change)."""

    conversation_id: uuid.UUID
    type: str
    title: str
    participant_ids: frozenset[uuid.UUID]
    created_by: uuid.UUID | None
    created_at: dt.datetime | None


class ConversationRepository:
    """Conversations by id, each user's list of them, and the one-per-pair claim of private ones."""

    def __init__(self, *, cassandra: Cassandra) -> None:
        self._cassandra = cassandra
        statement = cassandra.statement
        self._insert = statement(
            "INSERT INTO {ks}.conversations (conversation_id, type, title, participant_ids, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )
        self._insert_by_user = statement(
            "INSERT INTO {ks}.conversations_by_user (user_id, conversation_id) VALUES (?, ?)"
        )
        self._get = statement(
            "SELECT conversation_id, type, title, participant_ids, created_by, created_at"
            " FROM {ks}.conversations WHERE conversation_id = ?"
        )
        self._claim_private = statement(
            "INSERT INTO {ks}.private_conversations (user_low, user_high, conversation_id) VALUES (?, ?, ?) IF NOT EXISTS"
        )
        self._list_first = statement(
            "SELECT conversation_id FROM {ks}.conversations_by_user WHERE user_id = ? LIMIT ?"
        )
        self._list_after = statement(
            "SELECT conversation_id FROM {ks}.conversations_by_user WHERE user_id = ? AND conversation_id > ? LIMIT ?"
        )

    async def insert(self, *, conversation: ConversationRow, context: Context = None) -> None:
        """The conversation row and every participant's index row, all or nothing (a logged batch)."""
        rows = [
            (
                self._insert,
                (
                    conversation.conversation_id,
                    conversation.type,
                    conversation.title,
                    set(conversation.participant_ids),
                    conversation.created_by,
                    conversation.created_at,
                ),
            )
        ]
        rows += [
            (self._insert_by_user, (p, conversation.conversation_id)) for p in conversation.participant_ids
        ]
        await self._cassandra.run_batch(rows, batch_type=BatchType.LOGGED, context=context)

    async def get(self, *, conversation_id: uuid.UUID, context: Context = None) -> ConversationRow | None:
        """The conversation, or None."""
        row = (await self._cassandra.run(self._get, (conversation_id,), context=context)).one()
        if row is None:
            return None
        return ConversationRow(
            conversation_id=row.conversation_id,
            type=row.type,
            title=row.title or "",
            participant_ids=frozenset(row.participant_ids or ()),
            created_by=row.created_by,
            created_at=row.created_at,
        )

    async def claim_private(
        self, *, low: uuid.UUID, high: uuid.UUID, conversation_id: uuid.UUID, context: Context = None
    ) -> uuid.UUID | None:
        """Claim the pair (``low`` < ``high``) for ``conversation_id`` with a lightweight transaction.

        None if the claim is ours, else the id of the conversation that holds the pair.
        """
        row = (
            await self._cassandra.run(self._claim_private, (low, high, conversation_id), context=context)
        ).one()
        return None if row.applied else row.conversation_id

    async def ids_of_user(
        self, *, user_id: uuid.UUID, after: uuid.UUID | None, limit: int, context: Context = None
    ) -> list[uuid.UUID]:
        """Up to ``limit`` ids of the user's conversations in id order, from after ``after`` (None: the first)."""
        if after is None:
            rows = await self._cassandra.run(self._list_first, (user_id, limit), context=context)
        else:
            rows = await self._cassandra.run(self._list_after, (user_id, after, limit), context=context)
        return [row.conversation_id for row in rows]
