"""The operators' tools run against the live local stack through `chat4all stack tool` and `stack cqlsh`."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid

import pytest
from cassandra.cluster import Session

from chat4all import topic_names as names
from chat4all.settings import REPO_ROOT, Settings
from chat4all.topic_names import topic_name
from cli.harness.isolation import new_app_id

pytestmark = pytest.mark.integration

CHAT4ALL = str(REPO_ROOT / ".venv" / "bin" / "chat4all")


def _stack(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHAT4ALL, "stack", *args], capture_output=True, text=True, timeout=timeout, cwd=str(REPO_ROOT)
    )


async def _describe_while_member(settings: Settings, group_id: str, topic: str) -> tuple[str, dict[int, int]]:
    """Join ``group_id`` on ``topic`` with a real consumer, commit offsets, and describe the group meanwhile.

    Returns the tool's output and the offset committed for each partition the consumer was assigned.
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        for _ in range(100):  # the first assignment after the join, 10 s at most
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        await consumer.commit(ends)
        described = await asyncio.to_thread(
            _stack, "tool", "kafka-consumer-groups", "--describe", "--group", group_id
        )
    finally:
        await consumer.stop()
    assert described.returncode == 0, described.stderr[-2000:]
    return described.stdout, {tp.partition: offset for tp, offset in ends.items()}


def test_kafka_consumer_groups_describes_a_live_groups_partitions(stack: Settings) -> None:
    group_id = new_app_id("c4a-tools")
    topic = topic_name(stack, names.MESSAGES)
    try:
        out, committed = asyncio.run(_describe_while_member(stack, group_id, topic))
    finally:
        _stack("tool", "kafka-consumer-groups", "--delete", "--group", group_id)
    assert set(committed) == set(range(stack.topic_partitions)), "the one member gets every partition"
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    rows = [line.split() for line in out.splitlines() if line.startswith(group_id + " ")]
    assert {int(row[2]): int(row[3]) for row in rows if row[1] == topic} == committed, out
    for row in rows:
        assert int(row[5]) == int(row[4]) - int(row[3]) >= 0, f"LAG is LOG-END-OFFSET - CURRENT-OFFSET: {row}"
        assert row[6] != "-", f"the partition names the live member as its consumer: {row}"


def test_kafka_topics_describes_the_messages_topic(stack: Settings) -> None:
    topic = topic_name(stack, names.MESSAGES)
    result = _stack("tool", "kafka-topics", "--describe", "--topic", topic)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"PartitionCount: {stack.topic_partitions}" in result.stdout
    assert len(re.findall(rf"Topic: {re.escape(topic)}\tPartition: \d+\tLeader: ", result.stdout)) == (
        stack.topic_partitions
    )


def test_nodetool_status_shows_the_node_up_and_normal(stack: Settings) -> None:
    result = _stack("tool", "nodetool", "status")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"Datacenter: {stack.cassandra_local_dc}" in result.stdout
    assert re.search(r"^UN\s+127\.0\.0\.1\s", result.stdout, re.MULTILINE), result.stdout


def test_nodetool_tablestats_lists_a_platform_table(stack: Settings) -> None:
    keyspace = stack.cassandra_keyspace
    result = _stack("tool", "nodetool", "tablestats", f"{keyspace}.users_by_username")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"Keyspace: {keyspace}" in result.stdout
    assert re.search(r"^\s+Table: users_by_username$", result.stdout, re.MULTILINE), result.stdout
    assert "Local read count:" in result.stdout


def test_cqlsh_reads_a_known_row_in_the_platform_keyspace(stack: Settings, cql: Session) -> None:
    username = f"ops-tools-{uuid.uuid4().hex[:10]}"
    user_id = uuid.uuid4()
    cql.execute("INSERT INTO users_by_username (username, user_id) VALUES (%s, %s)", (username, user_id))
    try:
        # No keyspace in the query: `stack cqlsh` opens the platform's keyspace itself.
        result = _stack("cqlsh", "-e", f"SELECT user_id FROM users_by_username WHERE username = '{username}'")
    finally:
        cql.execute("DELETE FROM users_by_username WHERE username = %s", (username,))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert str(user_id) in result.stdout
    assert "(1 rows)" in result.stdout
