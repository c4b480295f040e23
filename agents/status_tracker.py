"""Status tracker agent: applies receipt updates to the per-message state machine, persists and notifies."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chat4all.settings import Settings, get_settings
from streams import metrics
from streams.app import app
from streams.cassandra_io import PipelineStore, get_store
from streams.dead_letters import dead_letter
from streams.parsing import InvalidRecord, decode
from streams.records import Notification, StatusUpdate
from streams.topics import notifications_topic, status_updates_topic
from tables.receipt_states import mark_settled, receipt_states, recently_settled
from tables.state_machine import (
    RANK,
    STALE,
    aggregate,
    apply_update,
    is_settled,
    new_entry,
    split_key,
    write_version,
)

logger = logging.getLogger(__name__)

settings = get_settings()

# Replaced by unit tests with an in-memory store; the real one waits out a Cassandra outage.
store_provider: Callable[[Settings], Awaitable[PipelineStore]] = get_store


def _to_ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    return int(value)


async def _entry_from_cassandra(update: StatusUpdate, store: PipelineStore) -> dict[str, Any] | None:
    """Rebuild a message's entry from its messages row (updates from the API carry no receipt set)."""
    found = await store.message_receipts(
        message_id=update.message_id, conversation_id=update.conversation_id, ts_ms=update.ts_ms
    )
    if found is None:
        return None
    sender_id, receipts = found
    entry = new_entry(conversation_id=update.conversation_id, ts_ms=update.ts_ms, sender_id=sender_id, receipt_keys=list(receipts))
    for key, receipt in receipts.items():
        status = getattr(receipt, "status", None) or "SENT"
        entry["r"][key] = {
            "s": status if status in RANK else "SENT",
            "d": _to_ms(getattr(receipt, "delivered_at", None)),
            "rd": _to_ms(getattr(receipt, "read_at", None)),
        }
    return entry


async def track_status(key: bytes | None, raw: bytes | None, *, store: PipelineStore) -> list[str]:
    """Apply one raw `status-updates` record; returns the outcome per targeted receipt (inside the tracker's stream)."""
    try:
        update = decode(StatusUpdate, raw, uuid_fields=("message_id", "conversation_id", "recipient_id"))
        if update.status not in RANK:
            raise InvalidRecord(f"unknown status {update.status!r}")
    except InvalidRecord as exc:
        await dead_letter(source="status-tracker", topic=status_updates_topic.get_topic_name(), key=key, payload=raw or b"", reason=str(exc))
        return ["dead-lettered"]
    ids = {"message_id": update.message_id, "conversation_id": update.conversation_id}

    entry = receipt_states.get(update.message_id)
    stored = entry is not None
    if entry is None:
        if update.receipt_keys and recently_settled(update.message_id):
            metrics.transitions.labels(update.status, STALE).inc()
            return [STALE]
        if update.receipt_keys:
            entry = new_entry(
                conversation_id=update.conversation_id, ts_ms=update.ts_ms, sender_id=update.sender_id,
                receipt_keys=list(update.receipt_keys),
            )
        else:
            entry = await _entry_from_cassandra(update, store)
            if entry is None:
                await dead_letter(
                    source="status-tracker", topic=status_updates_topic.get_topic_name(), key=key, payload=raw or b"",
                    reason="unknown message", **ids,
                )
                return ["dead-lettered"]
    if entry.get("sid") is None and update.sender_id:
        entry["sid"] = update.sender_id

    outcome = apply_update(
        entry, recipient_id=update.recipient_id, channel=update.channel, status=update.status,
        at_ms=update.at_ms, reason=update.reason,
    )
    for result in outcome.outcomes:
        metrics.transitions.labels(update.status, result).inc()
    if not outcome.changed:
        logger.debug("receipt update %s changed nothing: %s", update.status, outcome.outcomes, extra=ids)
        return outcome.outcomes

    now_ms = int(time.time() * 1000)
    # Cassandra first: if it is down we wait here, and the table (and the offset) stay behind
    # until the write went through. A replay after a crash rewrites the same values.
    try:
        await store.persist_receipts(
            message_id=update.message_id,
            conversation_id=entry["cid"],
            ts_ms=entry["ts"],
            changes=outcome.changes,
            overall=aggregate(entry),
            version=write_version(entry),
            now_ms=now_ms,
        )
    except Exception as exc:  # outages are retried inside; this is Cassandra refusing the record itself
        await dead_letter(
            source="status-tracker", topic=status_updates_topic.get_topic_name(), key=key, payload=raw or b"",
            reason=f"cassandra rejected: {exc}"[:300], **ids,
        )
        return ["dead-lettered"]
    if is_settled(entry):
        if stored:
            del receipt_states[update.message_id]
        mark_settled(update.message_id)
    else:
        receipt_states[update.message_id] = entry

    sender_id = entry.get("sid")
    for change in outcome.changes:
        metrics.status_latency.labels(change.status).observe(max(0.0, (update.at_ms - entry["ts"]) / 1000))
        if sender_id:
            recipient_id, channel = split_key(change.key)
            note = Notification(
                user_id=sender_id, kind="message.status", message_id=update.message_id,
                conversation_id=entry["cid"], at_ms=update.at_ms, status=change.status,
                recipient_id=recipient_id, channel=channel,
            )
            await notifications_topic.send(key=sender_id.encode(), value=note.dumps())
    return outcome.outcomes


@app.agent(status_updates_topic, name="status-tracker")
async def status_tracker(stream: Any) -> None:
    """Consume `status-updates` (key = message_id): all updates of a message in order, in one partition."""
    store = await store_provider(settings)
    async for event in stream.events():
        await track_status(event.key, event.value, store=store)
