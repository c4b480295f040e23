"""Router agent: dedup, persist the message as SENT, fan out one outbound record per recipient and channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agents.channel_selection import select_targets
from chat4all.settings import Settings, get_settings
from streams import metrics
from streams.app import app
from streams.cassandra_io import PipelineStore, get_store
from streams.dead_letters import dead_letter
from streams.parsing import InvalidRecord, decode
from streams.records import MessageEvent, OutboundEvent
from streams.topics import messages_topic, outbound_topics
from tables.dedup import already_routed, mark_routed

logger = logging.getLogger(__name__)

settings = get_settings()

# Replaced by unit tests with an in-memory store; the real one waits out a Cassandra outage.
store_provider: Callable[[Settings], Awaitable[PipelineStore]] = get_store

# Outcomes of route_message, for logs and tests.
ROUTED = "routed"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead-lettered"


async def route_message(key: bytes | None, raw: bytes | None, *, store: PipelineStore) -> str:
    """Route one raw `messages` record; must run inside the router's stream (it reads and writes the dedup table)."""
    try:
        msg = decode(MessageEvent, raw, uuid_fields=("message_id", "conversation_id", "sender_id"))
    except InvalidRecord as exc:
        await dead_letter(source="router", topic=messages_topic.get_topic_name(), key=key, payload=raw or b"", reason=str(exc))
        return DEAD_LETTERED
    ids = {"message_id": msg.message_id, "conversation_id": msg.conversation_id}
    if already_routed(msg.message_id):
        metrics.duplicates_skipped.inc()
        logger.info("message already routed, skipped", extra=ids)
        return DUPLICATE

    conversation = await store.conversation(msg.conversation_id)
    if conversation is not None and msg.sender_id not in conversation.participant_ids:
        # The cache may predate the sender joining: look again before rejecting.
        conversation = await store.conversation(msg.conversation_id, fresh=True)
    reason = None
    if conversation is None:
        reason = "conversation not found"
    elif msg.sender_id not in conversation.participant_ids:
        reason = "sender not a participant"
    if reason is not None:
        await dead_letter(
            source="router", topic=messages_topic.get_topic_name(), key=key, payload=raw or b"", reason=reason,
            message_id=msg.message_id, conversation_id=msg.conversation_id,
        )
        return DEAD_LETTERED
    assert conversation is not None

    recipients = sorted(conversation.participant_ids - {msg.sender_id})
    linked = await store.user_channels(recipients)
    targets = select_targets(
        sender_id=msg.sender_id,
        participant_ids=conversation.participant_ids,
        linked_channels=linked,
        requested=msg.channels or (),
        known_channels=outbound_topics.keys(),
    )
    receipt_keys = [t.key for t in targets]
    try:
        await store.persist_message(
            message_id=msg.message_id,
            conversation_id=msg.conversation_id,
            sender_id=msg.sender_id,
            ts_ms=msg.ts_ms,
            content=msg.content,
            file_id=msg.file_id,
            receipt_keys=receipt_keys,
        )
    except Exception as exc:  # outages are retried inside; this is Cassandra refusing the record itself
        await dead_letter(
            source="router", topic=messages_topic.get_topic_name(), key=key, payload=raw or b"", reason=f"cassandra rejected: {exc}"[:300],
            message_id=msg.message_id, conversation_id=msg.conversation_id,
        )
        return DEAD_LETTERED
    pending: list[Any] = []
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
        pending.append(await outbound_topics[target.channel].send(key=msg.message_id.encode(), value=outbound.dumps()))
        metrics.outbound_sent.labels(target.channel).inc()
    if pending and app.conf.processing_guarantee.value == "at_least_once":
        # The dedup mark must never reach the changelog before the records it vouches for:
        # wait for the broker's acks first (the sends themselves went out together).
        await asyncio.gather(*pending)
    mark_routed(msg.message_id)
    metrics.messages_routed.inc()
    logger.debug("routed to %d targets", len(targets), extra=ids)
    return ROUTED


@app.agent(messages_topic, name="router")
async def router(stream: Any) -> None:
    """Consume `messages` (key = conversation_id) in order per conversation."""
    store = await store_provider(settings)
    async for event in stream.events():
        await route_message(event.key, event.value, store=store)
