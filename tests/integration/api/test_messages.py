"""MessageService on a real API server and Kafka, with no worker.

What SendMessage publishes, validation, access, idempotency, MarkRead (see test_history_api.py
for what the router stores).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from chat4all.settings import Settings
from chat4all.v1 import conversations_pb2 as cpb
from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient, TestUser, expect_status
from cli.harness.topics import delete_topics
from tests.integration.api.kafka_probe import TopicProbe

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode


def private(api: ApiClient, a: TestUser, b: TestUser) -> str:
    return api.private_conversation(a, b)


@pytest.fixture
def room(api: ApiClient) -> tuple[TestUser, TestUser, TestUser, str]:
    alice, bob, outsider = (
        api.register_and_login("alice"),
        api.register_and_login("bob"),
        api.register_and_login("out"),
    )
    return alice, bob, outsider, private(api, alice, bob)


async def test_send_message_publishes_the_event_keyed_by_conversation(
    api: ApiClient, room, settings: Settings
) -> None:
    alice, _bob, _out, cid = room
    async with TopicProbe(settings=settings, topic="messages") as probe:
        before = time.time()
        reply = api.messages.SendMessage(
            pb.SendMessageRequest(conversation_id=cid, content="hello", channels=["native", "native"]),
            metadata=alice.md,
            timeout=10,
        )
        found = await probe.collect(lambda v: v.get("message_id") == reply.message_id)
    assert reply.status == pb.MESSAGE_STATUS_SENT
    message_id = uuid.UUID(reply.message_id)
    assert message_id.version == 7
    assert abs(reply.timestamp.ToMilliseconds() / 1000 - before) < 5
    assert len(found) == 1
    key, event = found[0]
    assert key == cid
    assert (
        event["conversation_id"] == cid
        and event["sender_id"] == alice.user_id
        and event["content"] == "hello"
    )
    assert event["ts_ms"] == reply.timestamp.ToMilliseconds()
    assert event["channels"] == ["native"]  # de-duplicated
    assert event["file_id"] is None and event["client_message_id"] is None
    assert "__faust" not in event  # plain JSON, as the wire format says


def test_message_ids_keep_send_order(api: ApiClient, room) -> None:
    alice, _bob, _out, cid = room
    ids = [
        api.messages.SendMessage(
            pb.SendMessageRequest(conversation_id=cid, content=f"m{i}"), metadata=alice.md, timeout=10
        ).message_id
        for i in range(5)
    ]
    assert ids == sorted(ids, key=lambda i: uuid.UUID(i).bytes)


def test_idempotent_send_returns_the_same_message(api: ApiClient, room) -> None:
    alice, _bob, _out, cid = room
    request = pb.SendMessageRequest(
        conversation_id=cid, content="once", client_message_id=f"cm-{uuid.uuid4()}"
    )
    first = api.messages.SendMessage(request, metadata=alice.md, timeout=10)
    second = api.messages.SendMessage(request, metadata=alice.md, timeout=10)
    assert (second.message_id, second.timestamp) == (first.message_id, first.timestamp)
    # Another conversation with the same key is a client bug, said clearly.
    bob2 = api.register_and_login("bob2")
    other = private(api, alice, bob2)
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.messages.SendMessage,
        pb.SendMessageRequest(
            conversation_id=other, content="x", client_message_id=request.client_message_id
        ),
        metadata=alice.md,
        timeout=10,
    )
    assert "another conversation" in err.details()


def test_same_client_message_id_from_another_sender_is_another_message(api: ApiClient, room) -> None:
    alice, bob, _out, cid = room
    key = f"cm-{uuid.uuid4()}"
    a = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="a", client_message_id=key),
        metadata=alice.md,
        timeout=10,
    )
    b = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="b", client_message_id=key),
        metadata=bob.md,
        timeout=10,
    )
    assert a.message_id != b.message_id


def test_send_message_validation(api: ApiClient, room, settings: Settings) -> None:
    alice, _bob, _out, cid = room
    send = api.messages.SendMessage

    def rejected(code: grpc.StatusCode, **fields) -> str:
        return expect_status(
            code, send, pb.SendMessageRequest(**fields), metadata=alice.md, timeout=10
        ).details()

    limit = settings.max_content_chars
    assert "content or a file_id" in rejected(CODE.INVALID_ARGUMENT, conversation_id=cid)
    assert f"limit is {limit}" in rejected(
        CODE.INVALID_ARGUMENT, conversation_id=cid, content="x" * (limit + 1)
    )
    assert "telegram" in rejected(
        CODE.INVALID_ARGUMENT, conversation_id=cid, content="x", channels=["telegram"]
    )
    assert "client_message_id" in rejected(
        CODE.INVALID_ARGUMENT, conversation_id=cid, content="x", client_message_id="k" * 129
    )
    assert "conversation_id" in rejected(CODE.INVALID_ARGUMENT, conversation_id="12345", content="x")
    assert "conversation_id is required" in rejected(CODE.INVALID_ARGUMENT, content="x")
    assert "not found" in rejected(CODE.NOT_FOUND, conversation_id=str(uuid.uuid4()), content="x")
    assert "file_id" in rejected(CODE.INVALID_ARGUMENT, conversation_id=cid, file_id="zzz")
    missing_file = str(uuid.uuid4())
    assert missing_file in rejected(CODE.NOT_FOUND, conversation_id=cid, file_id=missing_file)
    # Exactly at the limit is fine.
    ok = send(pb.SendMessageRequest(conversation_id=cid, content="y" * limit), metadata=alice.md, timeout=10)
    assert ok.status == pb.MESSAGE_STATUS_SENT


def test_outsider_is_denied_everything(api: ApiClient, room) -> None:
    alice, _bob, outsider, cid = room
    sent = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="private"), metadata=alice.md, timeout=10
    )
    for call, request in (
        (api.messages.SendMessage, pb.SendMessageRequest(conversation_id=cid, content="let me in")),
        (api.messages.GetMessages, pb.GetMessagesRequest(conversation_id=cid)),
        (api.messages.MarkRead, pb.MarkReadRequest(conversation_id=cid, message_ids=[sent.message_id])),
    ):
        err = expect_status(CODE.PERMISSION_DENIED, call, request, metadata=outsider.md, timeout=10)
        assert "not a participant" in err.details()


@pytest.mark.parametrize("size", [-5, 501])
def test_get_messages_rejects_page_size(api: ApiClient, room, size: int) -> None:
    alice, _bob, _out, cid = room
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.messages.GetMessages,
        pb.GetMessagesRequest(conversation_id=cid, page_size=size),
        metadata=alice.md,
        timeout=10,
    )
    assert f"got {size}" in err.details()


def test_get_messages_rejects_foreign_page_token(api: ApiClient, room) -> None:
    alice, _bob, _out, cid = room
    listed = api.conversations.ListConversations(
        cpb.ListConversationsRequest(page_size=1), metadata=alice.md, timeout=10
    )
    token = listed.next_page_token or "bm9wZQ"
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        api.messages.GetMessages,
        pb.GetMessagesRequest(conversation_id=cid, page_token=token),
        metadata=alice.md,
        timeout=10,
    )
    assert "page_token" in err.details()


def test_get_messages_of_unknown_conversation(api: ApiClient, room) -> None:
    alice, *_ = room
    expect_status(
        CODE.NOT_FOUND,
        api.messages.GetMessages,
        pb.GetMessagesRequest(conversation_id=str(uuid.uuid4())),
        metadata=alice.md,
        timeout=10,
    )


def test_mark_read_validation(api: ApiClient, room) -> None:
    alice, bob, _out, cid = room
    mark = api.messages.MarkRead
    err = expect_status(
        CODE.INVALID_ARGUMENT, mark, pb.MarkReadRequest(conversation_id=cid), metadata=bob.md, timeout=10
    )
    assert "message_ids is empty" in err.details()
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        mark,
        pb.MarkReadRequest(conversation_id=cid, message_ids=["bad"]),
        metadata=bob.md,
        timeout=10,
    )
    assert "message_ids" in err.details()
    unknown = str(uuid.uuid4())
    err = expect_status(
        CODE.NOT_FOUND,
        mark,
        pb.MarkReadRequest(conversation_id=cid, message_ids=[unknown]),
        metadata=bob.md,
        timeout=10,
    )
    assert unknown in err.details()
    err = expect_status(
        CODE.INVALID_ARGUMENT,
        mark,
        pb.MarkReadRequest(conversation_id=cid, message_ids=[unknown] * 501),
        metadata=bob.md,
        timeout=10,
    )
    assert "at most 500" in err.details()


async def test_an_api_with_a_topic_prefix_publishes_to_its_own_topics(
    api_factory, settings: Settings
) -> None:
    from cli.stack.bootstrap import create_topics

    prefix = f"c4a-prefix-{uuid.uuid4().hex[:8]}."
    isolated = settings.model_copy(update={"topic_prefix": prefix})
    created = await asyncio.to_thread(create_topics, isolated)
    assert f"{prefix}messages" in created
    try:
        api = api_factory({"CHAT4ALL_TOPIC_PREFIX": prefix})
        alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
        cid = api.private_conversation(alice, bob)
        async with (
            TopicProbe(settings=settings, topic=f"{prefix}messages") as own,
            TopicProbe(settings=settings, topic="messages") as shared,
        ):
            reply = api.messages.SendMessage(
                pb.SendMessageRequest(conversation_id=cid, content="isolated"), metadata=alice.md, timeout=10
            )
            mine = await own.collect(lambda v: v.get("message_id") == reply.message_id)
            leaked = await shared.collect(lambda v: v.get("message_id") == reply.message_id, timeout=1.0)
    finally:
        await delete_topics(settings, [prefix])
    assert len(mine) == 1 and mine[0][0] == cid
    assert leaked == []
