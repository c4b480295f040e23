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
from streams.inflight import InFlight
from streams.parsing import InvalidRecord, decode
from streams.records import Notification, StatusUpdate
from streams.topics import notifications_topic, status_updates_topic
from tables.receipt_states import mark_settled, receipt_states, recently_settled
from tables.state_machine import (
    RANK,
    STALE,
    aggregate,
    apply_update,
    current_changes,
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


REPLAYED = "replayed"


async def track_status(event: Any, *, store: PipelineStore, inflight: InFlight) -> list[str]:
    """Apply one raw `status-updates` event; returns the outcome per targeted receipt (inside the tracker's stream).

    The state machine and the table write happen here, in order per partition; the
    Cassandra write and the notifications run in the background (streams/inflight.py) and
    the event is acked when both are done. The entry remembers the offset of the last
    update it applied, so an update replayed after a crash (its table write survived, its
    Cassandra write may not have) writes the entry to Cassandra again instead of being
    dropped as a duplicate.
    """
    key, raw = event.key, event.value
    offset = event.message.offset
    try:
        update = decode(StatusUpdate, raw, uuid_fields=("message_id", "conversation_id", "recipient_id"))
        if update.status not in RANK:
            raise InvalidRecord(f"unknown status {update.status!r}")
    except InvalidRecord as exc:
        await _dead_letter(event, inflight, key=key, raw=raw, reason=str(exc))
        return ["dead-lettered"]
    ids = {"message_id": update.message_id, "conversation_id": update.conversation_id}

    entry = receipt_states.get(update.message_id)
    stored = entry is not None
    if entry is None:
        settled = recently_settled(update.message_id)
        if settled is not None:
            if offset <= settled["o"]:
                await _persist_again(event, inflight, update, settled["e"], store=store)
                return [REPLAYED]
            metrics.transitions.labels(update.status, STALE).inc()
            await inflight.submit(event)
            return [STALE]
        if update.receipt_keys:
            entry = new_entry(
                conversation_id=update.conversation_id, ts_ms=update.ts_ms, sender_id=update.sender_id,
                receipt_keys=list(update.receipt_keys),
            )
        else:
            entry = await _entry_from_cassandra(update, store)
            if entry is None:
                await _dead_letter(event, inflight, key=key, raw=raw, reason="unknown message", **ids)
                return ["dead-lettered"]
    elif offset <= entry.get("o", -1):
        await _persist_again(event, inflight, update, entry, store=store)
        return [REPLAYED]
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
        await inflight.submit(event)
        return outcome.outcomes

    entry["o"] = offset
    if is_settled(entry):
        if stored:
            del receipt_states[update.message_id]
        mark_settled(update.message_id, offset=offset, entry=entry)
    else:
        receipt_states[update.message_id] = entry
    # Everything the background steps need is computed now: later updates change ``entry``.
    write = _receipt_write(update.message_id, entry, outcome.changes)
    notes = _notifications(update, entry, outcome.changes)
    await inflight.submit(
        event, _persist(write, store, event=event, inflight=inflight), _notify(notes),
        order_key=update.message_id,
    )
    return outcome.outcomes


def _receipt_write(message_id: str, entry: dict[str, Any], changes: list[Any]) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "conversation_id": entry["cid"],
        "ts_ms": entry["ts"],
        "changes": changes,
        "overall": aggregate(entry),
        "version": write_version(entry),
        "now_ms": int(time.time() * 1000),
    }


def _notifications(update: StatusUpdate, entry: dict[str, Any], changes: list[Any]) -> list[tuple[bytes, bytes]]:
    sender_id = entry.get("sid")
    out = []
    for change in changes:
        metrics.status_latency.labels(change.status).observe(max(0.0, (update.at_ms - entry["ts"]) / 1000))
        if sender_id:
            recipient_id, channel = split_key(change.key)
            note = Notification(
                user_id=sender_id, kind="message.status", message_id=update.message_id,
                conversation_id=entry["cid"], at_ms=update.at_ms, status=change.status,
                recipient_id=recipient_id, channel=channel,
            )
            out.append((sender_id.encode(), note.dumps()))
    return out


def _persist(write: dict[str, Any], store: PipelineStore, *, event: Any, inflight: InFlight) -> Callable[[], Awaitable[None]]:
    async def persist() -> None:
        # Outages are retried inside persist_receipts; an error here is Cassandra refusing the record.
        try:
            await store.persist_receipts(**write)
        except Exception as exc:
            ids = {"message_id": write["message_id"], "conversation_id": write["conversation_id"]}
            fut = await dead_letter(
                source="status-tracker", topic=status_updates_topic.get_topic_name(), key=event.key,
                payload=event.value or b"", reason=f"cassandra rejected: {exc}"[:300], **ids,
            )
            await fut

    return persist


def _notify(notes: list[tuple[bytes, bytes]]) -> Callable[[], Awaitable[None]]:
    async def notify() -> None:
        pending = [await notifications_topic.send(key=k, value=v) for k, v in notes]
        for fut in pending:
            await fut

    return notify


async def _persist_again(event: Any, inflight: InFlight, update: StatusUpdate, entry: dict[str, Any], *, store: PipelineStore) -> None:
    """A replayed update: write the entry as it stands and notify its targets' current state again."""
    metrics.transitions.labels(update.status, REPLAYED).inc()
    targets = current_changes(entry, recipient_id=update.recipient_id, channel=update.channel)
    write = _receipt_write(update.message_id, entry, current_changes(entry))
    notes = _notifications(update, entry, targets)
    await inflight.submit(
        event, _persist(write, store, event=event, inflight=inflight), _notify(notes), order_key=update.message_id
    )


async def _dead_letter(event: Any, inflight: InFlight, *, key: bytes | None, raw: bytes | None, reason: str, **ids: Any) -> None:
    fut = await dead_letter(
        source="status-tracker", topic=status_updates_topic.get_topic_name(), key=key, payload=raw or b"",
        reason=reason, **ids,
    )

    async def acked() -> None:
        await fut

    await inflight.submit(event, then=acked)


inflight = InFlight(name="status-tracker", limit=settings.agent_max_in_flight)


@app.agent(status_updates_topic, name="status-tracker")
async def status_tracker(stream: Any) -> None:
    """Consume `status-updates` (key = message_id): all updates of a message in order, in one partition; manual acks."""
    store = await store_provider(settings)
    async for event in stream.noack().events():
        await track_status(event, store=store, inflight=inflight)
