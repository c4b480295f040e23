"""ConversationService on a real API server: private (one per pair), group, access, pagination."""

from __future__ import annotations

import uuid

import grpc
import pytest

from chat4all.v1 import conversations_pb2 as pb
from cli.harness.api_client import ApiClient, expect_status

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode
PRIVATE, GROUP = pb.CONVERSATION_TYPE_PRIVATE, pb.CONVERSATION_TYPE_GROUP


def test_private_conversation_is_one_per_pair(api: ApiClient) -> None:
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    first = api.conversations.CreateConversation(
        pb.CreateConversationRequest(type=PRIVATE, participant_ids=[bob.user_id]),
        metadata=alice.md,
        timeout=10,
    )
    assert first.created
    assert first.conversation.type == PRIVATE
    assert sorted(first.conversation.participant_ids) == sorted([alice.user_id, bob.user_id])
    assert first.conversation.created_by == alice.user_id and first.conversation.created_at.seconds > 0
    assert uuid.UUID(first.conversation_id).version == 7
    # Either side creating it again gets the same conversation.
    again = api.conversations.CreateConversation(
        pb.CreateConversationRequest(type=PRIVATE, participant_ids=[alice.user_id]),
        metadata=bob.md,
        timeout=10,
    )
    assert again.conversation_id == first.conversation_id and not again.created
    got = api.conversations.GetConversation(
        pb.GetConversationRequest(conversation_id=first.conversation_id), metadata=bob.md, timeout=10
    )
    assert got.conversation == first.conversation


def test_group_conversation_and_access(api: ApiClient) -> None:
    alice, bob, carol, outsider = (api.register_and_login(n) for n in ("alice", "bob", "carol", "out"))
    group = api.conversations.CreateConversation(
        pb.CreateConversationRequest(type=GROUP, participant_ids=[bob.user_id, carol.user_id], title="team"),
        metadata=alice.md,
        timeout=10,
    )
    assert (
        group.created and group.conversation.title == "team" and len(group.conversation.participant_ids) == 3
    )
    for member in (alice, bob, carol):
        listed = api.conversations.ListConversations(
            pb.ListConversationsRequest(), metadata=member.md, timeout=10
        )
        assert group.conversation_id in [c.conversation_id for c in listed.conversations]
    err = expect_status(
        CODE.PERMISSION_DENIED,
        api.conversations.GetConversation,
        pb.GetConversationRequest(conversation_id=group.conversation_id),
        metadata=outsider.md,
        timeout=10,
    )
    assert "not a participant" in err.details()
    listed = api.conversations.ListConversations(
        pb.ListConversationsRequest(), metadata=outsider.md, timeout=10
    )
    assert list(listed.conversations) == [] and listed.next_page_token == ""


def test_get_conversation_unknown_and_malformed(api: ApiClient) -> None:
    alice = api.register_and_login("alice")
    unknown = str(uuid.uuid4())
    err = expect_status(
        CODE.NOT_FOUND,
        api.conversations.GetConversation,
        pb.GetConversationRequest(conversation_id=unknown),
        metadata=alice.md,
        timeout=10,
    )
    assert unknown in err.details()
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.conversations.GetConversation,
        pb.GetConversationRequest(conversation_id="nope"),
        metadata=alice.md,
        timeout=10,
    )
    assert "conversation_id" in err.details()


def test_create_conversation_rejects_bad_requests(api: ApiClient) -> None:
    alice, bob, carol = (api.register_and_login(n) for n in ("alice", "bob", "carol"))
    create = api.conversations.CreateConversation

    def rejected(code: grpc.StatusCode, request: pb.CreateConversationRequest) -> str:
        return expect_status(code, create, request, metadata=alice.md, timeout=10).details()

    assert "type" in rejected(
        CODE.INVALID_ARGUMENT, pb.CreateConversationRequest(participant_ids=[bob.user_id])
    )
    assert "exactly two" in rejected(
        CODE.INVALID_ARGUMENT,
        pb.CreateConversationRequest(type=PRIVATE, participant_ids=[bob.user_id, carol.user_id]),
    )
    assert "exactly two" in rejected(
        CODE.INVALID_ARGUMENT, pb.CreateConversationRequest(type=PRIVATE, participant_ids=[alice.user_id])
    )
    assert "at least one" in rejected(CODE.INVALID_ARGUMENT, pb.CreateConversationRequest(type=GROUP))
    assert "participant_ids" in rejected(
        CODE.INVALID_ARGUMENT, pb.CreateConversationRequest(type=GROUP, participant_ids=["x"])
    )
    ghost = str(uuid.uuid4())
    assert ghost in rejected(
        CODE.NOT_FOUND, pb.CreateConversationRequest(type=GROUP, participant_ids=[bob.user_id, ghost])
    )
    # Nothing was created by the rejected calls.
    listed = api.conversations.ListConversations(pb.ListConversationsRequest(), metadata=bob.md, timeout=10)
    assert list(listed.conversations) == []


def test_list_conversations_pages_with_a_cursor(api: ApiClient) -> None:
    me = api.register_and_login("many")
    others = [api.register_and_login(f"peer{i}") for i in range(5)]
    created = [
        api.conversations.CreateConversation(
            pb.CreateConversationRequest(type=PRIVATE, participant_ids=[o.user_id]),
            metadata=me.md,
            timeout=10,
        ).conversation_id
        for o in others
    ]
    seen, token, pages = [], "", 0
    while True:
        page = api.conversations.ListConversations(
            pb.ListConversationsRequest(page_size=2, page_token=token), metadata=me.md, timeout=10
        )
        pages += 1
        assert len(page.conversations) <= 2
        seen += [c.conversation_id for c in page.conversations]
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == sorted(created)  # oldest first (UUIDv7 ids are time-ordered)


@pytest.mark.parametrize("size", [-1, 501])
def test_list_conversations_rejects_page_size(api: ApiClient, size: int) -> None:
    me = api.register_and_login("ps")
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.conversations.ListConversations,
        pb.ListConversationsRequest(page_size=size),
        metadata=me.md,
        timeout=10,
    )
    assert "between 1 and 500" in err.details()


def test_list_conversations_rejects_foreign_token(api: ApiClient) -> None:
    me = api.register_and_login("tk")
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.conversations.ListConversations,
        pb.ListConversationsRequest(page_token="!!garbage"),
        metadata=me.md,
        timeout=10,
    )
    assert "page_token" in err.details()
