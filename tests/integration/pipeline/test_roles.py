"""Workers of different roles in one consumer group: router, connectors and status tracker each on their own."""

from __future__ import annotations

import pytest

from cli.harness.isolation import IsolatedPipeline
from cli.harness.metrics import metric_value, worker_metrics
from cli.harness.seeding import events_for, publish_messages, setup_conversations
from cli.harness.waiting import wait_all_status
from cli.harness.worker_process import FAST_RECEIPTS

pytestmark = pytest.mark.integration


def test_split_roles_share_the_group_and_each_does_only_its_part(stack, cql):
    pipeline = IsolatedPipeline(stack, name="c4a-roles", env=FAST_RECEIPTS)
    try:
        workers = {role: pipeline.worker(role=role) for role in ("router", "connectors", "status")}
        for w in workers.values():
            w.wait_ready()
        conversations = setup_conversations(cql, 5, channels={"instagram": "@r"})
        events = events_for(conversations, 60, prefix="roles")
        publish_messages(stack, events, prefix=pipeline.prefix)
        rows = wait_all_status(cql, conversations, count=60, status="READ", timeout=90)
        assert sum(len(rs) for rs in rows.values()) == 60
        text = {role: worker_metrics(w) for role, w in workers.items()}
        assert metric_value(text["router"], "chat4all_messages_routed_total") == 60
        assert metric_value(text["connectors"], "chat4all_connector_sends_total", outcome="sent") == 60
        assert (
            metric_value(
                text["status"], "chat4all_receipt_transitions_total", status="READ", outcome="applied"
            )
            == 60
        )
        # Nobody did another role's work.
        assert metric_value(text["connectors"], "chat4all_messages_routed_total") == 0
        assert metric_value(text["router"], "chat4all_receipt_transitions_total") == 0
    finally:
        pipeline.close()
