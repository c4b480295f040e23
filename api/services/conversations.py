"""ConversationService: CreateConversation, GetConversation, ListConversations."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import grpc
import uuid6

from api import limits
from api.access import load_conversation, remember, require_participant
from api.auth_interceptor import current_user_uuid
from api.convert import parse_uuid, ts_from_datetime
from api.db.conversations import ConversationRow
from api.deps import ApiDeps
from api.errors import invalid, not_found
from api.pagination import cursor_uuid, page_size
from api.registration import ServiceRegistration, full_name
from chat4all.clock import utc_now
from chat4all.v1 import conversations_pb2 as pb
from chat4all.v1 import conversations_pb2_grpc

logger = logging.getLogger(__name__)

MAX_TITLE = limits.TITLE_CHARS
MAX_PARTICIPANTS = limits.MAX_PARTICIPANTS
_TYPES = {pb.CONVERSATION_TYPE_PRIVATE: "PRIVATE", pb.CONVERSATION_TYPE_GROUP: "GROUP"}
_TYPE_ENUM = {v: k for k, v in _TYPES.items()}


def to_proto(conversation: ConversationRow) -> pb.Conversation:
    """The Conversation message of a stored conversation row."""
    return pb.Conversation(
        conversation_id=str(conversation.conversation_id),
        type=_TYPE_ENUM.get(conversation.type, pb.CONVERSATION_TYPE_UNSPECIFIED),
        title=conversation.title,
        participant_ids=sorted(str(p) for p in conversation.participant_ids),
        created_by=str(conversation.created_by) if conversation.created_by else "",
        created_at=ts_from_datetime(conversation.created_at),
    )


class ConversationServicer(conversations_pb2_grpc.ConversationServiceServicer):
    """Private and group conversations of the caller."""

    def __init__(self, *, deps: ApiDeps) -> None:
        self._deps = deps

    async def CreateConversation(
        self, request: pb.CreateConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateConversationResponse:
        """CreateConversation: a PRIVATE or GROUP conversation with the caller in it.

        A PRIVATE conversation is one per pair: creating it again answers the existing one
        (``created`` false). INVALID_ARGUMENT for a bad type, title or participant count, NOT_FOUND
        for an unknown participant.
        """
        caller = current_user_uuid(context)
        kind = _TYPES.get(request.type)
        if kind is None:
            raise invalid("type must be CONVERSATION_TYPE_PRIVATE or CONVERSATION_TYPE_GROUP")
        if len(request.title) > MAX_TITLE:
            raise invalid(f"title is longer than {MAX_TITLE} characters")
        if len(request.participant_ids) > MAX_PARTICIPANTS:
            raise invalid(f"a conversation has at most {MAX_PARTICIPANTS} participants")
        participants = {parse_uuid(p, "participant_ids") for p in request.participant_ids} | {caller}
        if kind == "PRIVATE" and len(participants) != 2:
            raise invalid(
                f"a PRIVATE conversation has exactly two participants (you and one other), got {len(participants)}"
            )
        if kind == "GROUP" and len(participants) < 2:
            raise invalid("a GROUP conversation needs at least one participant besides you")
        conversations = self._deps.conversations
        others = sorted(participants - {caller})
        exist = await asyncio.gather(*(self._deps.users.exists(user_id=p, context=context) for p in others))
        missing = [str(p) for p, found in zip(others, exist, strict=True) if not found]
        if missing:
            raise not_found(f"unknown participant(s): {', '.join(missing)}")

        conversation = ConversationRow(
            conversation_id=uuid6.uuid7(),
            type=kind,
            title=request.title,
            participant_ids=frozenset(participants),
            created_by=caller,
            created_at=utc_now().replace(microsecond=0),
        )
        created = True
        if kind == "PRIVATE":
            low, high = sorted(participants)
            # One per pair: claim the pair first. If a previous attempt claimed it but died before
            # writing the rows, the rows are written now under the claimed id (self-repair).
            holder = await conversations.claim_private(
                low=low, high=high, conversation_id=conversation.conversation_id, context=context
            )
            if holder is not None:
                existing = await load_conversation(conversations, holder, context=context)
                if existing is not None:
                    return pb.CreateConversationResponse(
                        conversation_id=str(existing.conversation_id),
                        conversation=to_proto(existing),
                        created=False,
                    )
                conversation = dataclasses.replace(conversation, conversation_id=holder)
                created = False
        await conversations.insert(conversation=conversation, context=context)
        remember(conversation)
        logger.info(
            "created %s conversation", kind, extra={"conversation_id": str(conversation.conversation_id)}
        )
        return pb.CreateConversationResponse(
            conversation_id=str(conversation.conversation_id),
            conversation=to_proto(conversation),
            created=created,
        )

    async def GetConversation(
        self, request: pb.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConversationResponse:
        """GetConversation: one conversation; NOT_FOUND if unknown, PERMISSION_DENIED to a non-participant."""
        conversation = await require_participant(
            self._deps.conversations, request.conversation_id, current_user_uuid(context), context=context
        )
        return pb.GetConversationResponse(conversation=to_proto(conversation))

    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConversationsResponse:
        """ListConversations: the caller's conversations, oldest first, a page and its next token per call."""
        caller = current_user_uuid(context)
        size = page_size(request.page_size)
        cursor = self._deps.cursors.decode("conversations", request.page_token)
        conversations = self._deps.conversations
        after = None if cursor is None else cursor_uuid(cursor, "after")
        ids = await conversations.ids_of_user(user_id=caller, after=after, limit=size + 1, context=context)
        more = len(ids) > size
        ids = ids[:size]
        loaded = await asyncio.gather(
            *(load_conversation(conversations, cid, context=context) for cid in ids)
        )
        conversations = [to_proto(c) for c in loaded if c is not None]
        token = self._deps.cursors.encode("conversations", {"after": str(ids[-1])}) if more else ""
        return pb.ListConversationsResponse(conversations=conversations, next_page_token=token)


def registration(deps: ApiDeps) -> ServiceRegistration:
    """ConversationService, for the API server's list of services (cli/api.py)."""
    return ServiceRegistration(
        add_fn=conversations_pb2_grpc.add_ConversationServiceServicer_to_server,
        servicer=ConversationServicer(deps=deps),
        name=full_name(pb, "ConversationService"),
    )
