"""Circuit breaker on the real pipeline: an injected outage opens it, recovery closes it, nothing is lost."""

from __future__ import annotations

import time

import pytest

from tests.pipeline.helpers import (
    events_for,
    message_rows,
    metric_value,
    publish_messages,
    setup_conversations,
    wait_all_status,
    wait_until,
    worker_metrics,
)

pytestmark = pytest.mark.integration


def test_outage_opens_the_breaker_recovery_closes_it_and_every_message_arrives(stack, cql, isolated):
    worker = isolated.workers[0]
    conversations = setup_conversations(cql, 5)
    events = events_for(conversations, 40, prefix="outage")
    worker.post("/connectors/faults", {"outage": True})
    try:
        publish_messages(stack, events, prefix=isolated.prefix)
        wait_until(lambda: worker.get("/connectors")[1]["channels"]["whatsapp"]["breaker"] in ("OPEN", "HALF_OPEN"),
                   timeout=30, what="whatsapp breaker open")
        # Routed and stored as SENT, but nothing gets through while the channel is down.
        wait_all_status(cql, conversations, 40, "SENT", timeout=30)
        time.sleep(2)
        rows = message_rows(cql, conversations)
        assert {r.status for rs in rows.values() for r in rs} == {"SENT"}
        assert metric_value(worker_metrics(worker), "chat4all_connector_breaker_state", channel="whatsapp") == 2
    finally:
        worker.post("/connectors/faults", {"outage": False})
    rows = wait_all_status(cql, conversations, 40, "READ", timeout=60)
    assert sorted(str(r.message_id) for rs in rows.values() for r in rs) == sorted(e["message_id"] for e in events)
    state = worker.get("/connectors")[1]["channels"]["whatsapp"]
    assert state["breaker"] == "CLOSED" and state["opened_count"] >= 1
    text = worker_metrics(worker)
    assert metric_value(text, "chat4all_dead_letters_total", source="whatsapp-connector") == 0
