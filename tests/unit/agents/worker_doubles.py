"""Shared pieces of the agents' unit tests: an in-memory worker, a PipelineRepository stand-in, record builders, changelog recovery."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.cassandra_io import Conversation
from tables.scheduled_receipts import scheduled_receipt


@dataclass
class MemoryRepository:
    """What the agents need from Cassandra, in memory (pure unit tests only)."""

    conversations: dict[str, set[str]] = field(default_factory=dict)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipt_writes: list[dict[str, Any]] = field(default_factory=list)

    async def conversation(self, conversation_id: str, *, fresh: bool = False) -> Conversation | None:
        parts = self.conversations.get(conversation_id)
        return (
            None
            if parts is None
            else Conversation(conversation_id=conversation_id, participant_ids=frozenset(parts))
        )

    async def user_channels(self, user_ids: list[str]) -> dict[str, dict[str, str]]:
        return {u: self.channels.get(u, {}) for u in user_ids}

    async def persist_message(self, **kwargs: Any) -> None:
        self.messages.setdefault(kwargs["message_id"], {"writes": 0})
        self.messages[kwargs["message_id"]].update(kwargs)
        self.messages[kwargs["message_id"]]["writes"] += 1

    async def persist_receipts(self, **kwargs: Any) -> None:
        self.receipt_writes.append(kwargs)

    async def message_receipts(self, **kwargs: Any) -> Any:
        return None


def new_id() -> str:
    return str(uuid.uuid4())


class RecordedSends:
    """Stands in for faust Topic.send on the pipeline topics: records instead of producing to Kafka."""

    def __init__(self, *, ack_at_once: bool = True) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.headers: list[Any] = []  # each record's headers, in the order of ``sent``
        self.ack_at_once = ack_at_once
        self.unacked: list[Any] = []

    def install(self, monkeypatch: Any, topics: Any, *, sender: Any) -> RecordedSends:
        """Record what the agents send: through faust's topics, which the worker's sender then uses."""
        import asyncio
        import json

        monkeypatch.setattr(sender, "direct", False)
        for topic in topics.all():
            name = topic.get_topic_name()

            async def send(*, key=None, value=None, partition=None, _name=name, **kw):  # type: ignore[no-untyped-def]
                self.sent.append((_name, key, json.loads(value)))
                self.headers.append(kw.get("headers"))
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(None)
                return fut

            def send_soon(*, key=None, value=None, partition=None, _name=name, **kw):  # type: ignore[no-untyped-def]
                self.sent.append((_name, key, json.loads(value)))
                self.headers.append(kw.get("headers"))
                fut = asyncio.get_running_loop().create_future()
                if self.ack_at_once:
                    fut.set_result(None)
                else:
                    self.unacked.append(fut)
                return fut

            monkeypatch.setattr(topic, "send", send)
            monkeypatch.setattr(topic, "send_soon", send_soon)
        return self

    def ack_all(self) -> None:
        """The broker acknowledges every record sent with send_soon so far."""
        for fut in self.unacked:
            if not fut.done():
                fut.set_result(None)
        self.unacked.clear()

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [v for t, _k, v in self.sent if t == topic]


def unit_worker(role: str, *, cassandra: Any = None, clock: Any = None) -> Any:
    """A worker app of ``role`` built as a real worker is, on a temp data dir, without web pages or sensors."""
    import tempfile

    from agents.worker import build_worker
    from chat4all.clock import now_ms
    from chat4all.settings import Settings

    settings = Settings(
        data_dir=tempfile.mkdtemp(prefix="c4a-unit-"), app_id=f"c4a-unit-{uuid.uuid4().hex[:8]}"
    )

    async def provider() -> Any:
        return cassandra

    return build_worker(settings, role=role, cassandra=provider, clock=clock or now_ms, web=False)  # type: ignore[arg-type]


def status_update(
    mid: str, cid: str, rid: str, channel: str, status: str, at: int, keys: list[str], sender: str
) -> bytes:
    """A raw `status-updates` value as a connector or the API writes it (ts_ms 1000)."""
    import json

    return json.dumps(
        {
            "message_id": mid,
            "conversation_id": cid,
            "ts_ms": 1000,
            "recipient_id": rid,
            "channel": channel,
            "status": status,
            "at_ms": at,
            "receipt_keys": keys,
            "sender_id": sender,
        }
    ).encode()


def tracker_env(monkeypatch: Any) -> tuple[Any, MemoryRepository, RecordedSends, list[list[str]]]:
    """A status tracker on an in-memory repository with recorded sends, and the outcome of every event it tracks."""
    cassandra = MemoryRepository()
    worker = unit_worker("status", cassandra=cassandra)
    tracker = worker.status_tracker
    outcomes: list[list[str]] = []
    original = tracker.track_status

    async def recording(event: Any, *, cassandra: Any) -> list[str]:
        outcomes.append(await original(event, cassandra=cassandra))
        return outcomes[-1]

    monkeypatch.setattr(tracker, "track_status", recording)
    return (
        tracker,
        cassandra,
        RecordedSends().install(monkeypatch, worker.ctx.topics, sender=worker.ctx.sender),
        outcomes,
    )


def recover(table: Any, records: dict[str, Any], *, partition: int) -> None:
    """Write ``records`` into the table's store as faust's changelog recovery does: the bytes as they were produced."""
    serializers = table.app.serializers
    tp = TP(table.changelog_topic.get_topic_name(), partition)
    batch = [
        SimpleNamespace(
            message=SimpleNamespace(
                tp=tp,
                partition=partition,
                offset=offset,
                key=serializers.dumps_key(table.key_type, key, serializer=table.key_serializer),
                value=serializers.dumps_value(table.value_type, value, serializer=table.value_serializer),
            )
        )
        for offset, (key, value) in enumerate(records.items())
    ]
    table.apply_changelog_batch(batch)


def v1_schedule_entry(
    *, due: int, status: str, mid: str, cid: str, ts: int, rid: str, sid: str, keys: list[str]
) -> dict[str, Any]:
    """A `<channel>-schedule` entry in version 1, as ChannelWorker._entry wrote it."""
    return {"due": due, "st": status, "m": mid, "c": cid, "t": ts, "r": rid, "s": sid, "k": keys}


def v2_schedule_entry(
    *, due: int, status: str, mid: str, cid: str, ts: int, rid: str, sid: str, keys: list[str]
) -> dict[str, Any]:
    """A `<channel>-schedule` entry in version 2, as written before entries carried a traceparent."""
    return {
        "v": 2,
        "due": due,
        "st": status,
        "mid": mid,
        "cid": cid,
        "ts": ts,
        "rid": rid,
        "sid": sid,
        "k": keys,
    }


def v3_schedule_entry(
    *, due: int, status: str, mid: str, cid: str, ts: int, rid: str, sid: str, keys: list[str]
) -> dict[str, Any]:
    """Today's entry, as a worker with tracing off writes it (no traceparent)."""
    return dict(
        scheduled_receipt(
            due_ms=due,
            status=status,
            message_id=mid,
            conversation_id=cid,
            ts_ms=ts,
            recipient_id=rid,
            sender_id=sid,
            receipt_keys=keys,
        )
    )
