"""Each server of the local stack is real and usable from the project's own code."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from minio.error import S3Error
from prometheus_client import start_http_server

from chat4all import scrape_targets
from chat4all.cassandra import aexecute, connect
from chat4all.redis_client import redis_client
from chat4all.s3 import s3_client
from chat4all.settings import Settings
from chat4all.topic_names import MESSAGES

pytestmark = pytest.mark.integration


async def test_kafka_produce_and_consume(stack: Settings) -> None:
    topic = f"test-stack-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        payloads = [f"hello-{i}".encode() for i in range(5)]
        for p in payloads:
            await producer.send_and_wait(topic, p, key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest", group_id=f"g-{topic}"
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(20):
            while len(got) < len(payloads):
                batch = await consumer.getmany(timeout_ms=1000)
                got += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    assert got == payloads


async def test_platform_topics_have_configured_partitions(stack: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([MESSAGES])
    finally:
        await admin.close()
    assert len(desc["partitions"]) == stack.topic_partitions


async def test_cassandra_write_and_read_row(stack: Settings) -> None:
    session = await asyncio.to_thread(connect, stack)
    try:
        user_id = uuid.uuid4()
        name = f"stack-test-{user_id.hex[:8]}"
        await aexecute(session, "INSERT INTO users (user_id, username) VALUES (%s, %s)", (user_id, name))
        rows = await aexecute(session, "SELECT username FROM users WHERE user_id = %s", (user_id,))
        assert [r.username for r in rows] == [name]
        await aexecute(session, "DELETE FROM users WHERE user_id = %s", (user_id,))
    finally:
        session.cluster.shutdown()


def test_s3_presigned_get_and_bad_secret_rejected(stack: Settings) -> None:
    import io

    client = s3_client(stack)
    bucket = f"stack-test-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    body = uuid.uuid4().bytes * 1000
    client.put_object(bucket, "obj.bin", io.BytesIO(body), len(body))
    url = client.presigned_get_object(bucket, "obj.bin", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == body

    # A tampered signature must be refused by the server itself.
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
    assert err.value.code == 403

    wrong = s3_client(stack, secret_key="not-the-secret")
    with pytest.raises(S3Error) as s3err:
        wrong.get_object(bucket, "obj.bin")
    assert s3err.value.code in {"SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId"}

    client.remove_object(bucket, "obj.bin")
    client.remove_bucket(bucket)


async def test_redis_set_and_get(stack: Settings) -> None:
    client = redis_client(stack)
    key = f"stack-test:{uuid.uuid4()}"
    try:
        assert await client.set(key, "value", ex=60)
        assert await client.get(key) == "value"
    finally:
        await client.delete(key)
        await client.aclose()


def _prometheus(stack: Settings, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.prometheus_port}{path}", timeout=5) as response:
        return json.loads(response.read())["data"]


def test_prometheus_loads_the_alert_rules_and_scrapes_what_registers(stack: Settings) -> None:
    groups = _prometheus(stack, "/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == 6 and all(r["health"] == "ok" for r in rules)
    # The repository's rule file (that of the checkout that started the stack).
    assert all(g["file"].endswith("/grafana/alerts.yml") for g in groups)
    # This test process's own /metrics, registered as an API would be.
    server, thread = start_http_server(0, addr="127.0.0.1")
    address = f"127.0.0.1:{server.server_port}"
    path = scrape_targets.register(stack.targets_dir, job="chat4all-api", address=address)

    def health() -> str | None:
        targets = _prometheus(stack, "/api/v1/targets?state=active")["activeTargets"]
        return next((t["health"] for t in targets if t["labels"]["instance"] == address), None)

    try:
        deadline = (
            time.monotonic() + 30
        )  # the file is seen at once; the first scrape comes within an interval
        while health() != "up":
            assert time.monotonic() < deadline, f"the stack's Prometheus did not scrape {address}"
            time.sleep(0.5)
    finally:
        scrape_targets.unregister(path)
        server.shutdown()
        thread.join(5)
    deadline = time.monotonic() + 30
    while health() is not None:
        assert time.monotonic() < deadline, f"the stack's Prometheus still scrapes {address}"
        time.sleep(0.5)
