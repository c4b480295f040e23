"""SendMessage's client_message_id claim on a real API: one message per key.

Across retries, Redis forgetting, concurrent duplicates and API restarts; a reused key with
another request is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from cassandra.cluster import Session

from api.idempotency import fingerprint
from chat4all.redis_client import redis_client
from chat4all.settings import Settings
from chat4all.v1 import messages_pb2 as pb
from cli.harness.api_client import ApiClient, TestUser, expect_status
from tests.integration.api.kafka_probe import TopicProbe

pytestmark = pytest.mark.integration
CODE = grpc.StatusCode


@pytest.fixture
def pair(api: ApiClient) -> tuple[TestUser, str]:
    alice, bob = api.register_and_login("alice"), api.register_and_login("bob")
    return alice, api.private_conversation(alice, bob)


def send(api: ApiClient, user: TestUser, **fields) -> pb.SendMessageResponse:
    return api.messages.SendMessage(pb.SendMessageRequest(**fields), metadata=user.md, timeout=10)


def test_a_key_reused_for_a_different_request_is_refused(api: ApiClient, pair) -> None:
    alice, cid = pair
    key = f"cm-{uuid.uuid4()}"
    first = send(
        api,
        alice,
        conversation_id=cid,
        content="once",
        channels=["whatsapp", "native"],
        client_message_id=key,
    )
    # The same request, channels in another order: the same message.
    again = send(
        api,
        alice,
        conversation_id=cid,
        content="once",
        channels=["native", "whatsapp"],
        client_message_id=key,
    )
    assert (again.message_id, again.timestamp) == (first.message_id, first.timestamp)
    for other in (
        {"content": "twice", "channels": ["whatsapp", "native"]},
        {"content": "once", "channels": ["native"]},
    ):
        err = expect_status(
            CODE.INVALID_ARGUMENT,
            api.messages.SendMessage,
            pb.SendMessageRequest(conversation_id=cid, client_message_id=key, **other),
            metadata=alice.md,
            timeout=10,
        )
        assert "different message" in err.details()


def test_the_claim_is_recorded_in_cassandra_with_the_request_fingerprint(
    api: ApiClient, pair, cql: Session
) -> None:
    alice, cid = pair
    key = f"cm-{uuid.uuid4()}"
    reply = send(api, alice, conversation_id=cid, content="kept", channels=["native"], client_message_id=key)
    row = cql.execute(
        "SELECT message_id, conversation_id, ts, fingerprint FROM client_messages WHERE sender_id = %s AND client_message_id = %s",
        (uuid.UUID(alice.user_id), key),
    ).one()
    assert str(row.message_id) == reply.message_id and str(row.conversation_id) == cid
    assert row.fingerprint == fingerprint(
        conversation_id=uuid.UUID(cid), content="kept", file_id=None, channels=["native"]
    )


async def test_a_retry_after_redis_forgot_the_claim_is_answered_from_cassandra(
    api: ApiClient, pair, settings: Settings
) -> None:
    alice, cid = pair
    key = f"cm-{uuid.uuid4()}"
    first = send(api, alice, conversation_id=cid, content="durable", client_message_id=key)
    redis = redis_client(settings)
    try:
        assert (
            await redis.delete(f"chat4all:cmid:{alice.user_id}:{key}") == 1
        )  # its cache TTL ran out, or a crash
    finally:
        await redis.aclose()
    again = send(api, alice, conversation_id=cid, content="durable", client_message_id=key)
    assert (again.message_id, again.timestamp) == (first.message_id, first.timestamp)


async def test_concurrent_duplicates_make_one_message(api: ApiClient, pair, settings: Settings) -> None:
    alice, cid = pair
    key = f"cm-{uuid.uuid4()}"
    async with TopicProbe(settings=settings, topic="messages") as probe:
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = await asyncio.gather(
                *(
                    asyncio.wrap_future(
                        pool.submit(
                            send, api, alice, conversation_id=cid, content="dup", client_message_id=key
                        )
                    )
                    for _ in range(8)
                )
            )
        events = await probe.collect(lambda v: v.get("client_message_id") == key, count=1, timeout=5)
        await probe.settle(1.0)
        events += await probe.collect(lambda v: v.get("client_message_id") == key, count=100, timeout=1)
    assert len({(r.message_id, r.timestamp.ToMilliseconds()) for r in replies}) == 1
    # A replay of a message the router has not stored yet is published again (same id, deduplicated
    # downstream); what must never appear is a second message id.
    assert {e["message_id"] for _k, e in events} == {replies[0].message_id}


def test_a_claim_outlives_the_api_process_that_made_it(api: ApiClient, api_factory, pair) -> None:
    alice, cid = pair
    key = f"cm-{uuid.uuid4()}"
    other = api_factory()
    first = send(other, alice, conversation_id=cid, content="restart", client_message_id=key)
    other.server.stop()
    again = send(api, alice, conversation_id=cid, content="restart", client_message_id=key)
    assert (again.message_id, again.timestamp) == (first.message_id, first.timestamp)
