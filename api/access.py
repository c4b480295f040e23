"""Conversation lookups and the participant check every conversation-scoped RPC makes."""

from __future__ import annotations

import uuid

import grpc
from cachetools import TTLCache

from api.convert import parse_uuid
from api.db.conversations import ConversationRepository, ConversationRow
from api.errors import denied, not_found

# Conversations never change participants (there is no RPC for it), so a short cache is safe
# and spares SendMessage a Cassandra read per message.
_CACHE_TTL_SECONDS = 60.0
_CACHE_MAX = 50_000


_cache: TTLCache[uuid.UUID, ConversationRow] = TTLCache(maxsize=_CACHE_MAX, ttl=_CACHE_TTL_SECONDS)


def remember(conversation: ConversationRow) -> None:
    """Cache a conversation (just written) for the participant checks that follow."""
    _cache[conversation.conversation_id] = conversation


async def load_conversation(
    conversations: ConversationRepository,
    conversation_id: uuid.UUID,
    *,
    context: grpc.aio.ServicerContext | None = None,
) -> ConversationRow | None:
    """The conversation, or None if there is none with that id."""
    hit = _cache.get(conversation_id)
    if hit is not None:
        return hit
    conversation = await conversations.get(conversation_id=conversation_id, context=context)
    if conversation is None:
        return None
    remember(conversation)
    return conversation


async def require_participant(
    conversations: ConversationRepository,
    conversation_id: str,
    user_id: str | uuid.UUID,
    *,
    context: grpc.aio.ServicerContext | None = None,
) -> ConversationRow:
    """The conversation if ``user_id`` takes part in it.

    Raises (as ApiError) INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one,
    PERMISSION_DENIED for a non-participant.
    """
    cid = parse_uuid(conversation_id, "conversation_id")
    uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(user_id)
    conversation = await load_conversation(conversations, cid, context=context)
    if conversation is None:
        raise not_found(f"conversation {cid} not found")
    if uid not in conversation.participant_ids:
        raise denied(f"you are not a participant of conversation {cid}")
    return conversation
