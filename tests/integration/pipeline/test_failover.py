"""Operators' guarantees: a SIGKILLed worker loses nothing; a restarted worker recovers its tables from changelogs."""

from __future__ import annotations

import threading
import time

import pytest

from chat4all.wire import MessageEvent, decode
from cli.harness.isolation import IsolatedPipeline
from cli.harness.metrics import metric_value, worker_metrics
from cli.harness.seeding import events_for, publish_messages, setup_conversations
from cli.harness.topics import committed_offsets, topic_records, topic_size
from cli.harness.waiting import message_rows, wait_all_receipts, wait_all_status, wait_until

pytestmark = pytest.mark.integration


def _assert_each_stored_once_in_order(rows, events):
    for cid, rs in rows.items():
        sent = [e["message_id"] for e in events if e["conversation_id"] == cid]
        assert [str(r.message_id) for r in rs] == sent
        assert all(v.status == "READ" for r in rs for v in r.receipts.values())


def _diagnose(stack, cql, pipeline, conversations, events) -> str:
    """Which messages are short of READ, and how; where the missing ones sit in `messages` (for a failure message)."""
    rows = {str(r.message_id): r for rs in message_rows(cql, conversations).values() for r in rs}
    missing = [e["message_id"] for e in events if e["message_id"] not in rows]
    no_receipts = [m for m, r in rows.items() if not r.receipts]
    behind = {
        m: {k: v.status for k, v in r.receipts.items()}
        for m, r in rows.items()
        if r.receipts and any(v.status != "READ" for v in r.receipts.values())
    }
    where = ""
    if missing:
        # partition:offset of each missing message, and the group's commits: which worker skipped them.
        topic = pipeline.topic("messages")
        placed = {
            decode(MessageEvent, value).message_id: f"{partition}:{offset}"
            for partition, offset, value in topic_records(stack, topic)
            if value
        }
        where = (
            f"; missing at {sorted(placed.get(m, '?') for m in missing)}"
            f"; committed {committed_offsets(stack, pipeline.app_id, topic)}"
        )
    return (
        f"rows missing: {len(missing)} {missing[:5]}; rows without receipts: {len(no_receipts)}; "
        f"rows behind: {len(behind)} {list(behind.items())[:3]}{where}"
    )


# READ 1-2 s after DELIVERED: when a worker dies or joins mid-flow, scheduled READs are pending.
FLOW_ENV = {"CHAT4ALL_DELIVERED_DELAY_MS": "[100,300]", "CHAT4ALL_READ_DELAY_MS": "[1000,2000]"}
FLOW_CHANNELS = {"whatsapp": "+55", "instagram": "@x"}


def _publish_steadily(stack, pipeline, events, *, batch: int, pause: float):
    """Publish ``events`` in batches from a thread; returns it and the list its errors land in."""
    errors: list[BaseException] = []

    def produce():
        try:
            for i in range(0, len(events), batch):
                publish_messages(stack, events[i : i + batch], prefix=pipeline.prefix)
                time.sleep(pause)
        except BaseException as exc:  # surfaced by the caller: a publish failure is not a pipeline loss
            errors.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    return producer, errors


def _assert_flow_all_read_once(stack, cql, pipeline, producer, errors, conversations, events) -> None:
    """Once the publishing thread is done: every event published once, every receipt READ, each stored once, in order."""
    producer.join()
    assert not errors
    assert topic_size(stack, pipeline.topic("messages")) == len(events)  # all published, exactly once
    try:
        rows = wait_all_receipts(cql, conversations, count=len(events), status="READ", timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {_diagnose(stack, cql, pipeline, conversations, events)}") from None
    _assert_each_stored_once_in_order(rows, events)
    # And the group's commits reach the end: holding commits below an unacked event
    # (streams/takeover.py, fix 4) must not hold them for good.
    topic = pipeline.topic("messages")
    committed: dict[int, int | None] = {}

    def committed_to_the_end() -> bool:
        committed.update(committed_offsets(stack, pipeline.app_id, topic))
        return sum(offset or 0 for offset in committed.values()) == len(events)

    try:
        wait_until(committed_to_the_end, timeout=30, what=f"{len(events)} messages committed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; committed per partition: {committed}") from None


# The survivor takes over while records flow: the path of the takeover fixes in
# streams/takeover.py (docs/pipeline.md, "Partition takeover").
def test_sigkill_of_one_of_two_workers_loses_and_duplicates_nothing(stack, cql):
    pipeline = IsolatedPipeline(stack, name="c4a-failover", env=FLOW_ENV)
    survivor = pipeline.worker()
    victim = pipeline.worker()
    try:
        survivor.wait_ready()
        victim.wait_ready()
        wait_until(
            lambda: (
                (h := victim.health())
                and h["kafka"]["assigned_partitions"] > 0
                and not h["kafka"]["rebalancing"]
                and (s := survivor.health())
                and not s["kafka"]["rebalancing"]
            ),
            timeout=60,
            what="both workers assigned",
        )
        before = survivor.health()["kafka"]["assigned_partitions"]
        conversations = setup_conversations(cql, 30, channels=FLOW_CHANNELS)
        events = events_for(conversations, 600, prefix="kill")

        producer, errors = _publish_steadily(stack, pipeline, events, batch=100, pause=0.5)
        # As soon as the victim has routed something: its partitions have no commit yet, the
        # takeover path that lost records before streams/takeover.py (fix 1).
        wait_until(
            lambda: metric_value(worker_metrics(victim), "chat4all_messages_routed_total") > 0,
            timeout=60,
            interval=0.2,
            what="victim routing",
        )
        victim.kill()
        _assert_flow_all_read_once(stack, cql, pipeline, producer, errors, conversations, events)
        assert survivor.health()["kafka"]["assigned_partitions"] > before  # took over the victim's partitions
    finally:
        victim.kill()
        pipeline.close()


def test_a_worker_joining_mid_flow_loses_and_duplicates_nothing(stack, cql):
    # Scaling out: both workers rebalance and recover while records flow; an operator expects
    # nothing lost or stored twice here too.
    pipeline = IsolatedPipeline(stack, name="c4a-join", env=FLOW_ENV)
    first = pipeline.worker()
    try:
        first.wait_ready()
        conversations = setup_conversations(cql, 30, channels=FLOW_CHANNELS)
        events = events_for(conversations, 600, prefix="join")
        producer, errors = _publish_steadily(stack, pipeline, events, batch=50, pause=1.0)
        wait_until(
            lambda: metric_value(worker_metrics(first), "chat4all_messages_routed_total") > 0,
            timeout=60,
            interval=0.2,
            what="first worker routing",
        )
        second = pipeline.worker()
        second.wait_ready()
        _assert_flow_all_read_once(stack, cql, pipeline, producer, errors, conversations, events)
        assert second.health()["kafka"]["assigned_partitions"] > 0  # the group really was rebalanced
    finally:
        pipeline.close()


def test_a_worker_restarted_alone_recovers_pending_reads_from_the_changelogs(stack, cql):
    env = {"CHAT4ALL_DELIVERED_DELAY_MS": "[50,100]", "CHAT4ALL_READ_DELAY_MS": "[7000,9000]"}
    pipeline = IsolatedPipeline(stack, name="c4a-restart", env=env)
    first = pipeline.worker()
    try:
        first.wait_ready()
        conversations = setup_conversations(cql, 10)
        events = events_for(conversations, 100, prefix="restart")
        publish_messages(stack, events, prefix=pipeline.prefix)
        wait_all_status(cql, conversations, count=100, status="DELIVERED", timeout=40)
        time.sleep(4)  # offsets of the outbound records committed (every 2.8 s); READs still pending
        assert not any(r.status == "READ" for rs in message_rows(cql, conversations).values() for r in rs)
    finally:
        first.kill()
    # A new worker with an empty data dir: its tables can only come from the changelog topics.
    second = pipeline.worker()
    try:
        second.wait_ready()
        rows = wait_all_status(cql, conversations, count=100, status="READ", timeout=60)
        _assert_each_stored_once_in_order(rows, events)
        text = worker_metrics(second)
        # The READs came from the recovered schedule: nothing was sent again.
        assert metric_value(text, "chat4all_connector_sends_total", outcome="sent") == 0
        assert (
            metric_value(text, "chat4all_receipt_transitions_total", status="READ", outcome="applied") == 100
        )
    finally:
        pipeline.close()


def test_sigterm_finishes_in_flight_work_and_commits_so_a_restart_sends_nothing_again(stack, cql):
    env = {"CHAT4ALL_DELIVERED_DELAY_MS": "[50,100]", "CHAT4ALL_READ_DELAY_MS": "[5000,6000]"}
    pipeline = IsolatedPipeline(stack, name="c4a-sigterm", env=env)
    first = pipeline.worker()
    try:
        first.wait_ready()
        conversations = setup_conversations(cql, 10)
        events = events_for(conversations, 100, prefix="term")
        publish_messages(stack, events, prefix=pipeline.prefix)
        wait_all_status(cql, conversations, count=100, status="DELIVERED", timeout=40)
        assert first.stop() == 0  # graceful, at once: no waiting for the periodic commit
        second = pipeline.worker()  # empty data dir again
        second.wait_ready()
        rows = wait_all_status(cql, conversations, count=100, status="READ", timeout=60)
        _assert_each_stored_once_in_order(rows, events)
        text = worker_metrics(second)
        assert metric_value(text, "chat4all_connector_sends_total", outcome="sent") == 0
        assert metric_value(text, "chat4all_messages_routed_total") == 0
    finally:
        pipeline.close()
