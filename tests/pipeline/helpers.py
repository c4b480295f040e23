"""Test data for pipeline tests, written the way the API would: rows in Cassandra, MessageEvents on Kafka."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cassandra.cluster import Session
from uuid6 import uuid7

from chat4all import topic_names as names
from chat4all.settings import Settings


@dataclass
class Sent:
    """A message the test published: its Cassandra key."""

    message_id: str
    conversation_id: str
    ts_ms: int
    seq: int


def create_user(session: Session, *, channels: dict[str, str] | None = None) -> str:
    user_id = uuid.uuid4()
    session.execute(
        "INSERT INTO users (user_id, username, channels, created_at) VALUES (%s, %s, %s, toTimestamp(now()))",
        (user_id, f"pipe-{user_id.hex[:12]}", channels or {}),
    )
    return str(user_id)


def create_conversation(session: Session, participants: Iterable[str], *, kind: str = "GROUP") -> str:
    conversation_id = uuid7()
    session.execute(
        "INSERT INTO conversations (conversation_id, type, title, participant_ids, created_at)"
        " VALUES (%s, %s, %s, %s, toTimestamp(now()))",
        (conversation_id, kind, "pipeline test", {uuid.UUID(p) for p in participants}),
    )
    return str(conversation_id)


def message_event(
    conversation_id: str,
    sender_id: str,
    *,
    content: str = "hello",
    ts_ms: int | None = None,
    channels: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "message_id": str(uuid7()),
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "ts_ms": ts_ms if ts_ms is not None else int(time.time() * 1000),
        "content": content,
        "channels": channels or [],
        "v": 1,
    }


async def publish(settings: Settings, topic: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Produce JSON records (key, value) like the API does: aiokafka, acks=all, utf-8 keys."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=k.encode(), value=json.dumps(v).encode()) for k, v in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def publish_messages(settings: Settings, events: list[dict[str, Any]], *, prefix: str = "") -> None:
    """Publish MessageEvents to ``<prefix>messages`` keyed by conversation id, as the API does."""
    asyncio.run(publish(settings, prefix + names.MESSAGES, [(e["conversation_id"], e) for e in events]))


def message_rows(session: Session, conversation_ids: Iterable[str]) -> dict[str, list[Any]]:
    """Every messages row of each conversation, in clustering order."""
    out = {}
    for cid in conversation_ids:
        out[cid] = list(
            session.execute(
                "SELECT message_id, ts, content, status, delivered_at, read_at, receipts FROM messages WHERE conversation_id = %s",
                (uuid.UUID(cid),),
            )
        )
    return out


def wait_until(predicate, *, timeout: float, interval: float = 0.5, what: str = "condition") -> Any:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}"[:2000])


def statuses(session: Session, sent: list[Sent]) -> dict[str, str]:
    """message_id -> aggregate status for the given messages (rows missing are absent)."""
    rows = message_rows(session, {s.conversation_id for s in sent})
    wanted = {s.message_id for s in sent}
    return {str(r.message_id): r.status for rs in rows.values() for r in rs if str(r.message_id) in wanted}


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def worker_metrics(worker: Any) -> str:
    import urllib.request

    with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as resp:
        return resp.read().decode()


def wait_all_status(
    session: Session, conversations: Iterable[str], count: int, status: str, *, timeout: float
) -> dict[str, list[Any]]:
    """Wait until ``count`` messages of these conversations have aggregate ``status``; returns the rows."""
    conversations = list(conversations)

    def check():  # type: ignore[no-untyped-def]
        rows = message_rows(session, conversations)
        done = sum(1 for rs in rows.values() for r in rs if r.status == status)
        if done >= count:
            return rows
        seen: dict[str, int] = {}
        for rs in rows.values():
            for r in rs:
                seen[r.status] = seen.get(r.status, 0) + 1
        return _Progress(seen)

    return wait_until(check, timeout=timeout, interval=1, what=f"{count} messages {status}")


class _Progress(dict):
    """A falsy progress report, so wait_until keeps polling but can show where it got to."""

    def __bool__(self) -> bool:
        return False


def setup_conversations(
    session: Session, n: int, *, channels: dict[str, str] | None = None, size: int = 2
) -> dict[str, list[str]]:
    """``n`` conversations of ``size`` users, every user linked to ``channels`` (default WhatsApp)."""
    out = {}
    for _ in range(n):
        users = [
            create_user(
                session, channels=channels if channels is not None else {"whatsapp": "+5511999990000"}
            )
            for _ in range(size)
        ]
        out[create_conversation(session, users)] = users
    return out


def events_for(conversations: dict[str, list[str]], count: int, *, prefix: str = "m") -> list[dict[str, Any]]:
    cids = list(conversations)
    return [
        message_event(cids[i % len(cids)], conversations[cids[i % len(cids)]][0], content=f"{prefix}{i}")
        for i in range(count)
    ]


def wait_all_receipts(
    session: Session, conversations: Iterable[str], count: int, status: str = "READ", *, timeout: float
) -> dict[str, list[Any]]:
    """Wait until ``count`` messages have every receipt (not only the aggregate) at ``status``."""
    conversations = list(conversations)

    def check():  # type: ignore[no-untyped-def]
        rows = message_rows(session, conversations)
        done = sum(
            1
            for rs in rows.values()
            for r in rs
            if r.receipts and all(v.status == status for v in r.receipts.values())
        )
        if done >= count:
            return rows
        stuck: dict[str, int] = {}
        for rs in rows.values():
            for r in rs:
                for v in (r.receipts or {}).values():
                    stuck[v.status] = stuck.get(v.status, 0) + 1
        return _Progress(stuck)

    return wait_until(
        check, timeout=timeout, interval=1, what=f"{count} messages with every receipt {status}"
    )


async def _topic_size(settings: Settings, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def topic_size(settings: Settings, topic: str) -> int:
    """Records ever written to a (fresh, uncompacted) topic: the sum of its partitions' end offsets."""
    return asyncio.run(_topic_size(settings, topic))
