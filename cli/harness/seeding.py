"""Data written the way the API writes it: users and conversations in Cassandra, MessageEvents on Kafka."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from cassandra.cluster import Session
from uuid6 import uuid7

from chat4all import topic_names as names
from chat4all.settings import Settings

_DEFAULT_CHANNELS = {"whatsapp": "+5511999990000"}


def create_user(session: Session, *, channels: dict[str, str] | None = None) -> str:
    """A users row with a unique name, linked to ``channels``; returns its id."""
    user_id = uuid.uuid4()
    session.execute(
        "INSERT INTO users (user_id, username, channels, created_at) VALUES (%s, %s, %s, toTimestamp(now()))",
        (user_id, f"pipe-{user_id.hex[:12]}", channels or {}),
    )
    return str(user_id)


def create_conversation(session: Session, participants: Iterable[str], *, kind: str = "GROUP") -> str:
    """A conversations row of ``kind`` with these participant ids; returns its id."""
    conversation_id = uuid7()
    session.execute(
        "INSERT INTO conversations (conversation_id, type, title, participant_ids, created_at)"
        " VALUES (%s, %s, %s, %s, toTimestamp(now()))",
        (conversation_id, kind, "pipeline test", {uuid.UUID(p) for p in participants}),
    )
    return str(conversation_id)


def setup_conversations(
    session: Session, n: int, *, channels: dict[str, str] | None = None, size: int = 2
) -> dict[str, list[str]]:
    """``n`` conversations of ``size`` users, every user linked to ``channels`` (default WhatsApp)."""
    out = {}
    for _ in range(n):
        users = [
            create_user(session, channels=channels if channels is not None else _DEFAULT_CHANNELS)
            for _ in range(size)
        ]
        out[create_conversation(session, users)] = users
    return out


def message_event(
    conversation_id: str,
    sender_id: str,
    *,
    content: str = "hello",
    ts_ms: int | None = None,
    channels: list[str] | None = None,
) -> dict[str, Any]:
    """A MessageEvent as the API publishes it, with a new message id (timestamp: now unless given)."""
    return {
        "message_id": str(uuid7()),
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "ts_ms": ts_ms if ts_ms is not None else int(time.time() * 1000),
        "content": content,
        "channels": channels or [],
        "v": 1,
    }


def events_for(conversations: dict[str, list[str]], count: int, *, prefix: str = "m") -> list[dict[str, Any]]:
    """``count`` MessageEvents spread round-robin over ``conversations``, each sent by its first user."""
    cids = list(conversations)
    return [
        message_event(cids[i % len(cids)], conversations[cids[i % len(cids)]][0], content=f"{prefix}{i}")
        for i in range(count)
    ]


def api_trace_headers(settings: Settings) -> list[tuple[str, bytes]] | None:
    """A traceparent header as the API's publish gives a record while tracing is on, else None.

    A new trace id per record, sampled with ``tracing_sample_ratio`` as the API's root decision
    is: the workers then trace (or not) what a benchmark publishes as they trace what the API does.
    An unsampled draw gets no header, as the API publishes none outside a sampled span.
    """
    if not settings.tracing_enabled or random.random() >= settings.tracing_sample_ratio:
        return None
    trace_id, span_id = random.getrandbits(128) or 1, random.getrandbits(64) or 1
    return [("traceparent", f"00-{trace_id:032x}-{span_id:016x}-01".encode())]


async def publish(settings: Settings, topic: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Produce JSON records (key, value) like the API does: aiokafka, acks=all, utf-8 keys, its trace headers."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, key=k.encode(), value=json.dumps(v).encode(), headers=api_trace_headers(settings)
            )
            for k, v in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def publish_messages(settings: Settings, events: list[dict[str, Any]], *, prefix: str = "") -> None:
    """Publish MessageEvents to ``<prefix>messages`` keyed by conversation id, as the API does."""
    asyncio.run(publish(settings, prefix + names.MESSAGES, [(e["conversation_id"], e) for e in events]))
