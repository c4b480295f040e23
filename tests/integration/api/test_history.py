"""History through the whole pipeline: the API publishes, a real worker's router stores, GetMessages reads.

Pagination, idempotent sends stored once, DELIVERED on fetch (native) and READ by MarkRead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import grpc
import pytest

from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient, TestUser, expect_status

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode


def private(api: ApiClient, a: TestUser, b: TestUser) -> str:
    return api.private_conversation(a, b)


def all_messages(api: ApiClient, user: TestUser, cid: str) -> list[pb.Message]:
    out, token = [], ""
    while True:
        page = api.messages.GetMessages(
            pb.GetMessagesRequest(conversation_id=cid, page_size=500, page_token=token),
            metadata=user.md,
            timeout=10,
        )
        out += page.messages
        token = page.next_page_token
        if not token:
            return out


def wait_for(check: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def pair(api: ApiClient, pipeline_worker) -> tuple[TestUser, TestUser, str]:
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    return alice, bob, private(api, alice, bob)


def test_history_pages_through_three_pages_in_send_order(api: ApiClient, pair) -> None:
    alice, bob, cid = pair
    sent = [
        api.messages.SendMessage(
            pb.SendMessageRequest(conversation_id=cid, content=f"m{i}"), metadata=alice.md, timeout=10
        )
        for i in range(7)
    ]
    wait_for(lambda: len(all_messages(api, alice, cid)) == 7, "the router to store 7 messages")
    pages, token = [], ""
    while True:
        page = api.messages.GetMessages(
            pb.GetMessagesRequest(conversation_id=cid, page_size=3, page_token=token),
            metadata=alice.md,
            timeout=10,
        )
        pages.append(page.messages)
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    history = [m for p in pages for m in p]
    assert [m.message_id for m in history] == [s.message_id for s in sent]
    assert [m.content for m in history] == [f"m{i}" for i in range(7)]
    first = history[0]
    assert first.sender_id == alice.user_id and first.conversation_id == cid
    assert first.timestamp == sent[0].timestamp
    assert first.status == pb.MESSAGE_STATUS_SENT
    assert [(r.recipient_id, r.channel) for r in first.receipts] == [(bob.user_id, "native")]
    assert not first.HasField("file") and first.file_id == ""


def test_idempotent_send_is_stored_once(api: ApiClient, pair) -> None:
    alice, _bob, cid = pair
    request = pb.SendMessageRequest(
        conversation_id=cid, content="exactly once", client_message_id=f"cm-{uuid.uuid4()}"
    )
    replies = [api.messages.SendMessage(request, metadata=alice.md, timeout=10)]
    wait_for(lambda: all_messages(api, alice, cid), "the first copy to be stored")
    replies += [api.messages.SendMessage(request, metadata=alice.md, timeout=10) for _ in range(3)]
    api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="marker"), metadata=alice.md, timeout=10
    )
    history = wait_for(
        lambda: (h := all_messages(api, alice, cid)) and h[-1].content == "marker" and h, "the marker message"
    )
    assert [m.content for m in history] == ["exactly once", "marker"]
    assert {r.message_id for r in replies} == {history[0].message_id}


def test_fetch_marks_delivered_and_mark_read_marks_read(api: ApiClient, pair) -> None:
    alice, bob, cid = pair
    sent = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="see me"), metadata=alice.md, timeout=10
    )
    wait_for(lambda: all_messages(api, alice, cid), "the message to be stored")
    # Alice (the sender) fetching changes nothing; Bob fetching makes it DELIVERED to him (native).
    assert all_messages(api, alice, cid)[0].status == pb.MESSAGE_STATUS_SENT
    all_messages(api, bob, cid)

    def status() -> pb.Message:
        return all_messages(api, alice, cid)[0]

    delivered = wait_for(lambda: (m := status()).status == pb.MESSAGE_STATUS_DELIVERED and m, "DELIVERED")
    assert delivered.delivered_at.seconds > 0 and not delivered.HasField("read_at")
    assert delivered.receipts[0].status == pb.MESSAGE_STATUS_DELIVERED
    api.messages.MarkRead(
        pb.MarkReadRequest(conversation_id=cid, message_ids=[sent.message_id]), metadata=bob.md, timeout=10
    )
    read = wait_for(lambda: (m := status()).status == pb.MESSAGE_STATUS_READ and m, "READ")
    assert read.read_at.ToMilliseconds() >= read.delivered_at.ToMilliseconds() > 0
    assert read.receipts[0].status == pb.MESSAGE_STATUS_READ and read.receipts[0].read_at.seconds > 0


def test_mark_read_of_another_conversations_message_is_not_found(api: ApiClient, pair) -> None:
    alice, bob, cid = pair
    carol = api.register_and_login("carol")
    other = private(api, alice, carol)
    foreign = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=other, content="not yours"), metadata=alice.md, timeout=10
    )
    wait_for(lambda: all_messages(api, carol, other), "the foreign message to be stored")
    err = expect_status(
        CODE.NOT_FOUND,
        api.messages.MarkRead,
        pb.MarkReadRequest(conversation_id=cid, message_ids=[foreign.message_id]),
        metadata=bob.md,
        timeout=10,
    )
    assert foreign.message_id in err.details()


def test_attachment_rules_and_metadata_in_history(api: ApiClient, pair, settings) -> None:
    """A file row as the FileService leaves it after a complete upload.

    Written here directly: the upload path itself is tested in tests/files.
    """
    import datetime as dt

    from chat4all.cassandra import connect

    alice, bob, cid = pair
    carol = api.register_and_login("carol")
    elsewhere = private(api, alice, carol)
    own, foreign = uuid.uuid4(), uuid.uuid4()
    session = connect(settings)
    try:
        insert = session.prepare(
            "INSERT INTO files (file_id, conversation_id, uploader_id, filename, mime_type, size, sha256, bucket, object_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for file_id, conversation in ((own, cid), (foreign, elsewhere)):
            session.execute(
                insert,
                (
                    file_id,
                    uuid.UUID(conversation),
                    uuid.UUID(alice.user_id),
                    "cat.png",
                    "image/png",
                    1234,
                    "ab" * 32,
                    "chat4all-files",
                    f"test/{file_id}",
                    now,
                ),
            )
    finally:
        session.cluster.shutdown()
    err = expect_status(
        CODE.PERMISSION_DENIED,
        api.messages.SendMessage,
        pb.SendMessageRequest(conversation_id=cid, file_id=str(foreign)),
        metadata=alice.md,
        timeout=10,
    )
    assert "another conversation" in err.details()
    sent = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, file_id=str(own)), metadata=alice.md, timeout=10
    )
    history = wait_for(lambda: all_messages(api, bob, cid), "the attachment message")
    assert [m.message_id for m in history] == [sent.message_id]
    message = history[0]
    assert message.content == "" and message.file_id == str(own)
    assert (
        message.file.file_id,
        message.file.filename,
        message.file.mime_type,
        message.file.size,
        message.file.sha256,
    ) == (str(own), "cat.png", "image/png", 1234, "ab" * 32)
    assert message.file.created_at.seconds == int(now.timestamp())


async def test_status_updates_follow_the_wire_contract(api: ApiClient, pair, settings) -> None:
    from tests.integration.api.kafka_probe import TopicProbe

    alice, bob, cid = pair
    sent = api.messages.SendMessage(
        pb.SendMessageRequest(conversation_id=cid, content="contract"), metadata=alice.md, timeout=10
    )
    wait_for(lambda: all_messages(api, alice, cid), "the message to be stored")
    async with TopicProbe(settings=settings, topic="status-updates") as probe:
        all_messages(api, bob, cid)  # DELIVERED on the native channel
        api.messages.MarkRead(
            pb.MarkReadRequest(conversation_id=cid, message_ids=[sent.message_id]),
            metadata=bob.md,
            timeout=10,
        )
        found = await probe.collect(
            lambda v: v.get("message_id") == sent.message_id and v.get("source", "").startswith("api."),
            count=2,
        )
    by_status = {v["status"]: (k, v) for k, v in found}
    assert set(by_status) == {"DELIVERED", "READ"}
    for key, update in by_status.values():
        assert key == sent.message_id
        assert update["recipient_id"] == bob.user_id and update["conversation_id"] == cid
        assert update["sender_id"] == alice.user_id
        assert update["ts_ms"] == sent.timestamp.ToMilliseconds()
    assert by_status["DELIVERED"][1]["channel"] == "native"
    assert by_status["DELIVERED"][1]["receipt_keys"] == [f"{bob.user_id}:native"]
    assert by_status["READ"][1]["channel"] == "*"
