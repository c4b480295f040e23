"""Conversation lookups and the participant check every conversation-scoped RPC makes."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import grpc
from cachetools import TTLCache

from api.convert import parse_uuid
from api.errors import denied, not_found
from api.store import Store

logger = logging.getLogger(__name__)

# Conversations never change participants (there is no RPC for it), so a short cache is safe
# and spares SendMessage a Cassandra read per message.
_CACHE_TTL_SECONDS = 60.0
_CACHE_MAX = 50_000


@dataclass(frozen=True, kw_only=True)
class ConversationRow:
    conversation_id: uuid.UUID
    type: str
    title: str
    participant_ids: frozenset[uuid.UUID]
    created_by: uuid.UUID | None
    created_at: dt.datetime | None


_cache: TTLCache[uuid.UUID, ConversationRow] = TTLCache(maxsize=_CACHE_MAX, ttl=_CACHE_TTL_SECONDS)


def remember(conversation: ConversationRow) -> None:
    _cache[conversation.conversation_id] = conversation


async def load_conversation(
    store: Store, conversation_id: uuid.UUID, *, context: grpc.aio.ServicerContext | None = None
) -> ConversationRow | None:
    """The conversation, or None if there is none with that id."""
    hit = _cache.get(conversation_id)
    if hit is not None:
        return hit
    row = (await store.execute("get_conversation", (conversation_id,), context=context)).one()
    if row is None:
        return None
    conversation = ConversationRow(
        conversation_id=row.conversation_id,
        type=row.type,
        title=row.title or "",
        participant_ids=frozenset(row.participant_ids or ()),
        created_by=row.created_by,
        created_at=row.created_at,
    )
    remember(conversation)
    return conversation


async def require_participant(
    store: Store,
    conversation_id: str,
    user_id: str | uuid.UUID,
    *,
    context: grpc.aio.ServicerContext | None = None,
) -> ConversationRow:
    """The conversation if ``user_id`` takes part in it. Raises (as ApiError) INVALID_ARGUMENT for a
    malformed id, NOT_FOUND for an unknown one, PERMISSION_DENIED for a non-participant."""
    cid = parse_uuid(conversation_id, "conversation_id")
    uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(user_id)
    conversation = await load_conversation(store, cid, context=context)
    if conversation is None:
        raise not_found(f"conversation {cid} not found")
    if uid not in conversation.participant_ids:
        raise denied(f"you are not a participant of conversation {cid}")
    return conversation
