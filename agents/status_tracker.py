"""Status tracker agent: applies receipt updates to the per-message state machine, persists and notifies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chat4all import tracing
from chat4all.clock import to_ms
from chat4all.wire import InvalidRecord, Kind, Notification, StatusUpdate, decode, encode
from streams import event_spans, metrics
from streams.cassandra_io import PipelineRepository
from streams.context import AgentContext
from streams.inflight import InFlight, awaiting
from tables.receipt_states import ReceiptTables
from tables.state_machine import (
    RANK,
    SENT,
    STALE,
    MessageEntry,
    aggregate,
    apply_update,
    current_changes,
    is_settled,
    new_entry,
    split_key,
    write_version,
)

logger = logging.getLogger(__name__)


async def _entry_from_cassandra(update: StatusUpdate, cassandra: PipelineRepository) -> MessageEntry | None:
    """Rebuild a message's entry from its messages row (updates from the API carry no receipt set)."""
    found = await cassandra.message_receipts(
        message_id=update.message_id, conversation_id=update.conversation_id, ts_ms=update.ts_ms
    )
    if found is None:
        return None
    sender_id, receipts = found.sender_id, found.receipts
    entry = new_entry(
        conversation_id=update.conversation_id,
        ts_ms=update.ts_ms,
        sender_id=sender_id,
        receipt_keys=list(receipts),
    )
    for key, receipt in receipts.items():
        status = getattr(receipt, "status", None) or SENT
        entry["r"][key] = {
            "s": status if status in RANK else SENT,
            "d": to_ms(getattr(receipt, "delivered_at", None)),
            "rd": to_ms(getattr(receipt, "read_at", None)),
        }
    return entry


REPLAYED = "replayed"
DEAD_LETTERED = "dead-lettered"

Step = Callable[[], Awaitable[None]]


class StatusTracker:
    """Consumes `status-updates` (key = message_id): all updates of a message in order, in one partition; manual acks."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.tables = ReceiptTables(app=ctx.app, settings=ctx.settings)
        self.inflight = InFlight(
            name="status-tracker",
            limit=ctx.settings.agent_max_in_flight,
            on_done=metrics.agent_observer("status-tracker"),
        )
        self.topic_name = ctx.topics.status_updates.get_topic_name()
        self.agent = ctx.app.agent(ctx.topics.status_updates, name="status-tracker")(self._consume)

    async def _consume(self, stream: Any) -> None:
        cassandra = await self.ctx.cassandra()
        async for event in stream.noack().events():
            if tracing.ENABLED:
                with event_spans.consumed(event, agent="status-tracker"):
                    await self.track_status(event, cassandra=cassandra)
            else:
                await self.track_status(event, cassandra=cassandra)

    async def track_status(self, event: Any, *, cassandra: PipelineRepository) -> list[str]:
        """Apply one raw `status-updates` event; returns the outcome per targeted receipt (inside the tracker's stream).

        The state machine and the table write happen here, in order per partition; the
        Cassandra write and the notifications run in the background (streams/inflight.py) and
        the event is acked when both are done. The entry remembers the offset of the last
        update it applied, so an update replayed after a crash (its table write survived, its
        Cassandra write may not have) writes the entry to Cassandra again instead of being
        dropped as a duplicate.
        """
        raw = event.value
        offset = event.message.offset
        try:
            update = decode(StatusUpdate, raw, uuid_fields=("message_id", "conversation_id", "recipient_id"))
            if update.status not in RANK:
                raise InvalidRecord(f"unknown status {update.status!r}")
        except InvalidRecord as exc:
            await self._dead_letter(event, reason=str(exc))
            return [DEAD_LETTERED]
        ids = {"message_id": update.message_id, "conversation_id": update.conversation_id}
        if tracing.ENABLED:
            event_spans.annotate(**ids, status=update.status, channel=update.channel)
        states = self.tables.states

        entry = states.get(update.message_id)
        stored = entry is not None
        if entry is None:
            settled = self.tables.recently_settled(update.message_id)
            if settled is not None:
                if offset <= settled["o"]:
                    await self._persist_again(event, update, settled["e"], cassandra=cassandra)
                    return [REPLAYED]
                metrics.transitions.labels(update.status, STALE).inc()
                await self.inflight.submit(event)
                return [STALE]
            if update.receipt_keys:
                entry = new_entry(
                    conversation_id=update.conversation_id,
                    ts_ms=update.ts_ms,
                    sender_id=update.sender_id,
                    receipt_keys=list(update.receipt_keys),
                )
            else:
                entry = await _entry_from_cassandra(update, cassandra)
                if entry is None:
                    await self._dead_letter(event, reason="unknown message", **ids)
                    return [DEAD_LETTERED]
        elif offset <= entry.get("o", -1):
            await self._persist_again(event, update, entry, cassandra=cassandra)
            return [REPLAYED]
        if entry.get("sid") is None and update.sender_id:
            entry["sid"] = update.sender_id

        outcome = apply_update(
            entry,
            recipient_id=update.recipient_id,
            channel=update.channel,
            status=update.status,
            at_ms=update.at_ms,
            reason=update.reason,
        )
        for result in outcome.outcomes:
            metrics.transitions.labels(update.status, result).inc()
        if not outcome.changed:
            logger.debug("receipt update %s changed nothing: %s", update.status, outcome.outcomes, extra=ids)
            await self.inflight.submit(event)
            return outcome.outcomes

        entry["o"] = offset
        if is_settled(entry):
            if stored:
                del states[update.message_id]
            self.tables.mark_settled(update.message_id, offset=offset, entry=entry)
        else:
            states[update.message_id] = entry
        # Everything the background steps need is computed now: later updates change ``entry``.
        write = self._receipt_write(update.message_id, entry, outcome.changes)
        notes = _notifications(update, entry, outcome.changes)
        await self.inflight.submit(
            event, self._persist(write, cassandra, event), self._notify(notes), order_key=update.message_id
        )
        return outcome.outcomes

    def _receipt_write(self, message_id: str, entry: MessageEntry, changes: list[Any]) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "conversation_id": entry["cid"],
            "ts_ms": entry["ts"],
            "changes": changes,
            "overall": aggregate(entry),
            "version": write_version(entry),
            "now_ms": self.ctx.clock(),
        }

    def _persist(self, write: dict[str, Any], cassandra: PipelineRepository, event: Any) -> Step:
        async def persist() -> None:
            # Outages are retried inside persist_receipts; an error here is Cassandra refusing the record.
            try:
                await cassandra.persist_receipts(**write)
            except Exception as exc:
                ids = {"message_id": write["message_id"], "conversation_id": write["conversation_id"]}
                fut = await self.ctx.dead_letters.send(
                    source="status-tracker",
                    topic=self.topic_name,
                    key=event.key,
                    payload=event.value or b"",
                    reason=f"cassandra rejected: {exc}"[:300],
                    **ids,
                )
                await fut

        return persist

    def _notify(self, notes: list[tuple[bytes, bytes]]) -> Step:
        topic, sender = self.ctx.topics.notifications, self.ctx.sender

        async def notify() -> None:
            pending = [await sender.send(topic, key=k, value=v) for k, v in notes]
            for fut in pending:
                await fut

        return notify

    async def _persist_again(
        self, event: Any, update: StatusUpdate, entry: MessageEntry, *, cassandra: PipelineRepository
    ) -> None:
        """A replayed update: write the entry as it stands and notify its targets' current state again."""
        metrics.transitions.labels(update.status, REPLAYED).inc()
        targets = current_changes(entry, recipient_id=update.recipient_id, channel=update.channel)
        write = self._receipt_write(update.message_id, entry, current_changes(entry))
        notes = _notifications(update, entry, targets)
        await self.inflight.submit(
            event, self._persist(write, cassandra, event), self._notify(notes), order_key=update.message_id
        )

    async def _dead_letter(self, event: Any, *, reason: str, **ids: Any) -> None:
        fut = await self.ctx.dead_letters.send(
            source="status-tracker",
            topic=self.topic_name,
            key=event.key,
            payload=event.value or b"",
            reason=reason,
            **ids,
        )

        await self.inflight.submit(event, then=awaiting([fut]))


def _notifications(
    update: StatusUpdate, entry: MessageEntry, changes: list[Any]
) -> list[tuple[bytes, bytes]]:
    sender_id = entry.get("sid")
    out = []
    for change in changes:
        metrics.status_latency.labels(change.status).observe(max(0.0, (update.at_ms - entry["ts"]) / 1000))
        if sender_id:
            recipient_id, channel = split_key(change.key)
            note = Notification(
                user_id=sender_id,
                kind=Kind.MESSAGE_STATUS,
                message_id=update.message_id,
                conversation_id=entry["cid"],
                at_ms=update.at_ms,
                status=change.status,
                recipient_id=recipient_id,
                channel=channel,
            )
            out.append((sender_id.encode(), encode(note)))
    return out
