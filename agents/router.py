"""Router agent: dedup, persist the message as SENT, fan out one outbound record per recipient and channel."""

from __future__ import annotations

import logging
from typing import Any

from agents.channel_selection import select_targets
from chat4all import tracing
from chat4all.wire import InvalidRecord, MessageEvent, OutboundEvent, decode, encode
from streams import event_spans, metrics
from streams.cassandra_io import PipelineRepository
from streams.context import AgentContext
from streams.inflight import InFlight, awaiting
from tables.dedup import DedupTable

logger = logging.getLogger(__name__)

# Outcomes of route_message, for logs and tests.
ROUTED = "routed"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead-lettered"


class Router:
    """Consumes `messages` (key = conversation_id) in order per conversation; acks are manual (streams/inflight.py)."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.dedup = DedupTable(app=ctx.app, settings=ctx.settings)
        self.inflight = InFlight(
            name="router", limit=ctx.settings.agent_max_in_flight, on_done=metrics.agent_observer("router")
        )
        self.topic_name = ctx.topics.messages.get_topic_name()
        self.agent = ctx.app.agent(ctx.topics.messages, name="router")(self._consume)

    async def _consume(self, stream: Any) -> None:
        cassandra = await self.ctx.cassandra()
        async for event in stream.noack().events():
            if tracing.ENABLED:
                with event_spans.consumed(event, agent="router"):
                    await self.route_message(event, cassandra=cassandra)
            else:
                await self.route_message(event, cassandra=cassandra)

    async def route_message(self, event: Any, *, cassandra: PipelineRepository) -> str:
        """Route one raw `messages` event; must run inside the router's stream (it reads and writes the dedup table).

        The decision and the dedup mark happen here, in order; the Cassandra writes and the
        outbound sends run in the background (streams/inflight.py) and the event is acked when
        the broker has acked its outbound records.
        """
        raw = event.value
        offset = event.message.offset
        try:
            msg = decode(MessageEvent, raw, uuid_fields=("message_id", "conversation_id", "sender_id"))
        except InvalidRecord as exc:
            await self._dead_letter(event, reason=str(exc))
            return DEAD_LETTERED
        ids = {"message_id": msg.message_id, "conversation_id": msg.conversation_id}
        if tracing.ENABLED:
            event_spans.annotate(**ids)
        if self.dedup.already_routed(msg.message_id, offset=offset):
            metrics.duplicates_skipped.inc()
            logger.info("message already routed, skipped", extra=ids)
            await self.inflight.submit(event)
            return DUPLICATE

        conversation = await cassandra.conversation(msg.conversation_id)
        if conversation is not None and msg.sender_id not in conversation.participant_ids:
            # The cache may predate the sender joining: look again before rejecting.
            conversation = await cassandra.conversation(msg.conversation_id, fresh=True)
        reason = None
        if conversation is None:
            reason = "conversation not found"
        elif msg.sender_id not in conversation.participant_ids:
            reason = "sender not a participant"
        if reason is not None:
            await self._dead_letter(event, reason=reason, **ids)
            return DEAD_LETTERED
        assert conversation is not None

        outbound_topics = self.ctx.topics.outbound
        recipients = sorted(conversation.participant_ids - {msg.sender_id})
        linked = await cassandra.user_channels(recipients)
        targets = select_targets(
            sender_id=msg.sender_id,
            participant_ids=conversation.participant_ids,
            linked_channels=linked,
            requested=msg.channels or (),
            known_channels=outbound_topics.keys(),
        )
        receipt_keys = [t.key for t in targets]
        # Marked now, in the event's order: a copy of this message under another offset (an API
        # retry) is a duplicate from here on, while this very record, replayed after a crash
        # before its effects were durable, is routed again (the mark holds its offset).
        self.dedup.mark_routed(msg.message_id, offset=offset)
        rejected: list[str] = []

        async def persist() -> None:
            try:
                await cassandra.persist_message(
                    message_id=msg.message_id,
                    conversation_id=msg.conversation_id,
                    sender_id=msg.sender_id,
                    ts_ms=msg.ts_ms,
                    content=msg.content,
                    file_id=msg.file_id,
                    receipt_keys=receipt_keys,
                )
            # Outages are retried inside; this is Cassandra refusing the record itself.
            except Exception as exc:
                rejected.append(f"cassandra rejected: {exc}"[:300])

        async def fan_out() -> None:
            if rejected:
                # Still in this event's context (the task copied it): the mark goes, so a replay
                # from dead-letters is routed once the cause is fixed.
                self.dedup.unmark_routed(msg.message_id)
                await self._dead_letter_now(event, reason=rejected[0], **ids)
                return
            pending = []
            for target in targets:
                outbound = OutboundEvent(
                    message_id=msg.message_id,
                    conversation_id=msg.conversation_id,
                    sender_id=msg.sender_id,
                    ts_ms=msg.ts_ms,
                    recipient_id=target.recipient_id,
                    channel=target.channel,
                    handle=target.handle,
                    content=msg.content,
                    file_id=msg.file_id,
                    receipt_keys=receipt_keys,
                )
                # Keyed by message id: every record of one message lands on the same partition
                # of status-updates later, in order.
                pending.append(
                    await self.ctx.sender.send(
                        outbound_topics[target.channel], key=msg.message_id.encode(), value=encode(outbound)
                    )
                )
                metrics.outbound_sent.labels(target.channel).inc()
            # The event is acked (and its offset may be committed) only once the broker has these.
            for fut in pending:
                await fut
            metrics.messages_routed.inc()
            logger.debug("routed to %d targets", len(targets), extra=ids)

        # Ordered per conversation: a conversation's outbound records leave in its order.
        await self.inflight.submit(event, persist, fan_out, order_key=msg.conversation_id)
        return ROUTED

    async def _send_dead_letter(self, event: Any, *, reason: str, **ids: Any) -> Any:
        return await self.ctx.dead_letters.send(
            source="router",
            topic=self.topic_name,
            key=event.key,
            payload=event.value or b"",
            reason=reason,
            **ids,
        )

    async def _dead_letter_now(self, event: Any, *, reason: str, **ids: Any) -> None:
        """Dead-letter from a background step and wait for the broker's ack (the event is acked after it)."""
        await (await self._send_dead_letter(event, reason=reason, **ids))

    async def _dead_letter(self, event: Any, *, reason: str, **ids: Any) -> None:
        """Dead-letter from the loop; the event is acked once the dead letter is on the broker."""
        fut = await self._send_dead_letter(event, reason=reason, **ids)
        await self.inflight.submit(event, then=awaiting([fut]))
