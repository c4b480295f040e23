"""Cassandra down is an outage, not a bad message: the worker pauses, reports unhealthy, resumes by itself."""

from __future__ import annotations

import time

import pytest

from cli.harness.isolation import IsolatedPipeline
from cli.harness.metrics import metric_value, worker_metrics
from cli.harness.seeding import events_for, publish_messages, setup_conversations
from cli.harness.waiting import message_rows, wait_all_status, wait_until
from cli.harness.worker_process import FAST_RECEIPTS
from tests.integration.pipeline.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.integration


def test_cassandra_outage_pauses_the_pipeline_without_dead_letters_and_it_resumes(stack, cql):
    proxy = CuttableProxy(target=(stack.cassandra_host, stack.cassandra_port)).start()
    pipeline = IsolatedPipeline(
        stack,
        name="c4a-outage",
        env={
            **FAST_RECEIPTS,
            "CHAT4ALL_CASSANDRA_PORT": str(proxy.port),
            "CHAT4ALL_CASSANDRA_RETRY_MAX_SECONDS": "1",
        },
    )
    worker = pipeline.worker()
    try:
        worker.wait_ready()
        conversations = setup_conversations(cql, 4)
        before = events_for(conversations, 20, prefix="pre")
        publish_messages(stack, before, prefix=pipeline.prefix)
        wait_all_status(cql, conversations, count=20, status="READ", timeout=40)

        proxy.cut()
        during = events_for(conversations, 20, prefix="during")
        publish_messages(stack, during, prefix=pipeline.prefix)
        status, body = wait_until(
            lambda: (r := worker.get("/health")) and r[0] == 503 and r, timeout=30, what="/health unhealthy"
        )
        assert body["cassandra"]["ok"] is False and body["status"] == "unhealthy"
        time.sleep(3)
        rows = message_rows(cql, conversations)
        assert sum(len(rs) for rs in rows.values()) == 20  # nothing new got through, nothing skipped past

        proxy.restore()
        rows = wait_all_status(cql, conversations, count=40, status="READ", timeout=90)
        assert sorted(str(r.message_id) for rs in rows.values() for r in rs) == sorted(
            e["message_id"] for e in before + during
        )
        wait_until(lambda: worker.get("/health")[0] == 200, timeout=30, what="/health ok again")
        text = worker_metrics(worker)
        assert metric_value(text, "chat4all_dead_letters_total") == 0
        assert metric_value(text, "chat4all_cassandra_retries_total") > 0
    finally:
        pipeline.close()
        proxy.cut()
