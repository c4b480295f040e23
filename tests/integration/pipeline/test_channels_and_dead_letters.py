"""Native channel receipts driven by API-style status updates; dead letters and `chat4all dlq replay`."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from chat4all import topic_names as names
from cli.harness.seeding import create_conversation, create_user, message_event, publish, publish_messages
from cli.harness.waiting import message_rows, wait_until
from cli.harness.worker_process import CHAT4ALL

pytestmark = pytest.mark.integration


def test_native_recipient_stays_sent_until_the_api_reports_delivered_and_read(stack, cql, isolated):
    import asyncio

    alice, bob = create_user(cql, channels={"whatsapp": "+1"}), create_user(cql)  # bob has no linked channel
    cid = create_conversation(cql, [alice, bob], kind="PRIVATE")
    event = message_event(cid, alice)
    publish_messages(stack, [event], prefix=isolated.prefix)
    key = f"{bob}:native"

    def row():
        rows = message_rows(cql, [cid])[cid]
        return rows[0] if rows else None

    first = wait_until(row, timeout=30, what="message row")
    assert set(first.receipts) == {key} and first.status == "SENT"
    time.sleep(1.5)  # the native connector simulates nothing: still SENT
    assert row().status == "SENT"

    # What the API publishes: DELIVERED on GetMessages, READ with channel '*' on MarkRead, no receipt set.
    base = {
        "message_id": event["message_id"],
        "conversation_id": cid,
        "ts_ms": event["ts_ms"],
        "recipient_id": bob,
        "source": "api",
    }
    now = int(time.time() * 1000)
    asyncio.run(
        publish(
            stack,
            isolated.topic(names.STATUS_UPDATES),
            [
                (event["message_id"], {**base, "channel": "native", "status": "DELIVERED", "at_ms": now}),
                (event["message_id"], {**base, "channel": "*", "status": "READ", "at_ms": now + 5}),
                (
                    event["message_id"],
                    {**base, "channel": "native", "status": "DELIVERED", "at_ms": now + 9},
                ),  # late
            ],
        )
    )
    done = wait_until(
        lambda: (r := row()) is not None and r.status == "READ" and r, timeout=30, what="native READ"
    )
    receipt = done.receipts[key]
    assert (
        receipt.status == "READ"
        and receipt.delivered_at is not None
        and receipt.read_at >= receipt.delivered_at
    )
    # Only a FAILED receipt gets a receipts row (for its reason); a READ one lives in the map alone.
    assert (
        cql.execute(
            "SELECT status FROM receipts WHERE message_id = %s", (uuid.UUID(event["message_id"]),)
        ).one()
        is None
    )


def _dlq(pipeline, *args: str) -> str:
    env = {**os.environ, **pipeline.env}
    return subprocess.run(
        [CHAT4ALL, "dlq", *args], check=True, capture_output=True, text=True, timeout=60, env=env
    ).stdout


def test_bad_messages_are_dead_lettered_with_reason_and_can_be_replayed(stack, cql, isolated):
    alice, bob = (
        create_user(cql, channels={"instagram": "@a"}),
        create_user(cql, channels={"instagram": "@b"}),
    )
    missing_cid = str(uuid.uuid4())
    orphan = message_event(missing_cid, alice)
    cid = create_conversation(cql, [alice, bob])
    intruder = message_event(cid, create_user(cql))
    publish_messages(stack, [orphan, intruder], prefix=isolated.prefix)

    def letters():
        out = {}
        for line in _dlq(isolated, "list", "--json", "--limit", "0").splitlines():
            body = json.loads(line)
            if body.get("message_id") in (orphan["message_id"], intruder["message_id"]):
                out[body["message_id"]] = body
        return out if len(out) == 2 else None

    found = wait_until(letters, timeout=40, interval=1, what="two dead letters")
    assert found[orphan["message_id"]]["reason"] == "conversation not found"
    assert found[intruder["message_id"]]["reason"] == "sender not a participant"
    assert found[orphan["message_id"]]["topic"] == isolated.topic(names.MESSAGES)
    assert message_rows(cql, [missing_cid, cid]) == {missing_cid: [], cid: []}

    # The operator fixes the cause (the conversation now exists) and replays that letter.
    cql.execute(
        "INSERT INTO conversations (conversation_id, type, participant_ids) VALUES (%s, 'PRIVATE', %s)",
        (uuid.UUID(missing_cid), {uuid.UUID(alice), uuid.UUID(bob)}),
    )
    out = _dlq(isolated, "replay", found[orphan["message_id"]]["id"])
    assert "replayed 1 record" in out
    rows = wait_until(
        lambda: [r for r in message_rows(cql, [missing_cid])[missing_cid] if r.status == "READ"],
        timeout=40,
        what="replayed message READ",
    )
    assert [str(r.message_id) for r in rows] == [orphan["message_id"]]
