"""Circuit breaker on the real pipeline: an injected outage opens it, recovery closes it, nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from cli.harness.isolation import IsolatedPipeline
from cli.harness.metrics import metric_value, worker_metrics
from cli.harness.seeding import events_for, publish_messages, setup_conversations
from cli.harness.waiting import message_rows, wait_all_status, wait_until
from cli.harness.worker_process import CHAT4ALL, FAST_RECEIPTS

pytestmark = pytest.mark.integration


def test_outage_opens_the_breaker_recovery_closes_it_and_every_message_arrives(stack, cql, isolated):
    worker = isolated.workers[0]
    conversations = setup_conversations(cql, 5)
    events = events_for(conversations, 40, prefix="outage")
    worker.post("/connectors/faults", {"outage": True})
    try:
        publish_messages(stack, events, prefix=isolated.prefix)
        wait_until(
            lambda: worker.get("/connectors")[1]["channels"]["whatsapp"]["breaker"] in ("OPEN", "HALF_OPEN"),
            timeout=30,
            what="whatsapp breaker open",
        )
        # Routed and stored as SENT, but nothing gets through while the channel is down.
        wait_all_status(cql, conversations, count=40, status="SENT", timeout=30)
        time.sleep(2)
        rows = message_rows(cql, conversations)
        assert {r.status for rs in rows.values() for r in rs} == {"SENT"}
        assert (
            metric_value(worker_metrics(worker), "chat4all_connector_breaker_state", channel="whatsapp") == 2
        )
    finally:
        worker.post("/connectors/faults", {"outage": False})
    rows = wait_all_status(cql, conversations, count=40, status="READ", timeout=60)
    assert sorted(str(r.message_id) for rs in rows.values() for r in rs) == sorted(
        e["message_id"] for e in events
    )
    state = worker.get("/connectors")[1]["channels"]["whatsapp"]
    assert state["breaker"] == "CLOSED" and state["opened_count"] >= 1
    text = worker_metrics(worker)
    assert metric_value(text, "chat4all_dead_letters_total", source="whatsapp-connector") == 0


def test_a_recipient_the_connector_gives_up_on_is_failed_and_dead_lettered(stack, cql):
    env = {
        **FAST_RECEIPTS,
        "CHAT4ALL_CONNECTOR_SEND_ERROR_RATE": "0.4",
        "CHAT4ALL_CONNECTOR_MAX_ATTEMPTS": "2",
        "CHAT4ALL_BREAKER_FAILURE_THRESHOLD": "1000",
    }
    pipeline = IsolatedPipeline(stack, name="c4a-giveup", env=env)
    try:
        worker = pipeline.worker()
        worker.wait_ready()
        conversations = setup_conversations(cql, 5)
        events = events_for(conversations, 60, prefix="giveup")
        publish_messages(stack, events, prefix=pipeline.prefix)

        def settled():
            rows = message_rows(cql, conversations)
            done = [r for rs in rows.values() for r in rs if r.status in ("READ", "FAILED")]
            return done if len(done) == 60 else None

        rows = wait_until(settled, timeout=60, what="60 messages READ or FAILED")
        failed = {str(r.message_id) for r in rows if r.status == "FAILED"}
        assert 0 < len(failed) < 60  # 16% give up after 2 attempts at a 40% error rate
        for r in rows:
            (receipt,) = r.receipts.values()
            assert receipt.status == r.status
        # A FAILED receipt also gets a receipts row that keeps its reason.
        reasons = [
            cql.execute("SELECT status, reason FROM receipts WHERE message_id = %s", (r.message_id,)).one()
            for r in rows
            if str(r.message_id) in failed
        ]
        assert all(x is not None and x.status == "FAILED" and x.reason.startswith("gave up") for x in reasons)
        text = worker_metrics(worker)
        assert metric_value(text, "chat4all_dead_letters_total", source="whatsapp-connector") == len(failed)
        assert metric_value(
            text, "chat4all_receipt_transitions_total", status="FAILED", outcome="applied"
        ) == len(failed)
        env_cli = {**os.environ, **pipeline.env}
        out = subprocess.run(
            [CHAT4ALL, "dlq", "list", "--json", "--limit", "0"],
            capture_output=True,
            text=True,
            check=True,
            env=env_cli,
            timeout=60,
        ).stdout
        letters = [json.loads(line) for line in out.splitlines()]
        assert {x["message_id"] for x in letters} == failed
        assert all(x["reason"].startswith("gave up after 2 attempts") and x["attempts"] == 2 for x in letters)
        assert all(x["topic"] == pipeline.topic("whatsapp-outbound") for x in letters)
    finally:
        pipeline.close()
