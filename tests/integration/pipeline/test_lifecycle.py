"""The whole lifecycle on the real stack: publish -> router -> connectors -> status tracker -> READ in Cassandra."""

from __future__ import annotations

import random
import uuid

import pytest

from cli.harness.seeding import create_conversation, create_user, message_event, publish_messages
from cli.harness.waiting import message_rows, wait_all_receipts, wait_until

pytestmark = pytest.mark.integration


def test_1000_messages_over_50_conversations_all_reach_read_once_and_in_order(stack, cql, isolated):
    rng = random.Random(7)
    conversations: dict[str, list[str]] = {}
    for i in range(50):
        # Private chats and small groups; recipients on WhatsApp, Instagram or both.
        size = 2 if i % 2 else 3
        linked = [
            {"whatsapp": f"+5511{rng.randint(10**7, 10**8)}"},
            {"instagram": f"@u{i}"},
            {"whatsapp": f"+5521{i}", "instagram": f"@b{i}"},
        ]
        users = [create_user(cql, channels=linked[(i + k) % 3]) for k in range(size)]
        conversations[create_conversation(cql, users)] = users
    events = []
    base = 1_800_000_000_000 + rng.randint(0, 10**6)
    for n in range(1000):
        cid = list(conversations)[n % 50]
        sender = conversations[cid][n % len(conversations[cid])]
        # Equal timestamps on purpose (two per ms): (ts, message_id) must keep both.
        events.append(message_event(cid, sender, content=f"m{n}", ts_ms=base + n // 2))
    publish_messages(stack, events, prefix=isolated.prefix)

    expected = {cid: [e for e in events if e["conversation_id"] == cid] for cid in conversations}

    # Every receipt READ, not only the aggregate (a recipient on two channels is READ with one).
    rows = wait_all_receipts(cql, conversations, count=1000, status="READ", timeout=150)
    for cid, rs in rows.items():
        # Stored once each, in the order sent.
        assert [str(r.message_id) for r in rs] == [e["message_id"] for e in expected[cid]]
        assert [r.content for r in rs] == [e["content"] for e in expected[cid]]
        for r, e in zip(rs, expected[cid], strict=True):
            recipients = set(conversations[cid]) - {e["sender_id"]}
            assert {str(v.recipient_id) for v in r.receipts.values()} == recipients
            assert all(
                v.status == "READ" and v.delivered_at is not None and v.read_at is not None
                for v in r.receipts.values()
            )
            assert r.delivered_at is not None and r.read_at is not None and r.read_at >= r.delivered_at
    sample = rows[next(iter(rows))][0]
    assert uuid.UUID(str(sample.message_id)).version == 7


def test_the_session_worker_fixture_runs_the_whole_lifecycle_on_the_shared_topics(
    stack, cql, pipeline_worker
):
    # The fixture other areas' tests use (e.g. the API's): the real topics, its own app id.
    alice, bob = create_user(cql, channels={"instagram": "@a"}), create_user(cql, channels={"whatsapp": "+2"})
    cid = create_conversation(cql, [alice, bob], kind="PRIVATE")
    event = message_event(cid, alice)
    publish_messages(stack, [event])
    row = wait_until(
        lambda: [r for r in message_rows(cql, [cid])[cid] if r.status == "READ"],
        timeout=40,
        what="READ via the session worker",
    )[0]
    assert set(row.receipts) == {f"{bob}:whatsapp"}
    assert pipeline_worker.health()["status"] == "ok"
