"""Reads `notifications` from its end and hands each event to the clients connected here.

Every gateway instance reads every partition (no consumer group): a user may be connected to
any instance. A new message written to the transport of at least one client of its recipient
(``written``, called by the client loop) is that recipient's native DELIVERED receipt, published
to `status-updates` like GetMessages does.

With tracing on, a record carrying a trace context is handled inside a "gateway deliver" span
of its trace, and the DELIVERED receipt it leads to is published under that span.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from api.publisher import Publisher
from chat4all import trace_headers, tracing
from chat4all.clock import now_ms
from chat4all.settings import Settings
from chat4all.topic_names import NOTIFICATIONS, STATUS_UPDATES, topic_name
from chat4all.wire import Channel, Kind, Notification, Status, StatusUpdate, decode, encode
from gateway import metrics
from gateway.hub import Hub

logger = logging.getLogger(__name__)


class NotificationFeed:
    """The background task of one gateway: consume, dispatch, acknowledge delivery."""

    def __init__(self, *, settings: Settings, hub: Hub, publisher: Publisher) -> None:
        self._settings = settings
        self._hub = hub
        self._publisher = publisher
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        # New native messages queued for a client and not yet written to any: the first write
        # acknowledges. Weak, so an event every client dropped (gone, too slow) leaves nothing.
        self._unwritten: weakref.WeakSet[Notification] = weakref.WeakSet()
        # The trace context of each of those events (tracing on only), for its DELIVERED receipt.
        self._contexts: weakref.WeakKeyDictionary[Notification, Context] = weakref.WeakKeyDictionary()
        self.ready = asyncio.Event()  # set once positioned at the end of every partition

    def start(self) -> None:
        """Start consuming `notifications` in the background (``ready`` is set once at the end)."""
        self._task = asyncio.create_task(self._run(), name="notification-feed")

    async def stop(self) -> None:
        """Stop consuming and wait (up to 5 s) for the DELIVERED receipts being published."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)

    async def _run(self) -> None:
        # Kafka may be down when the API starts: keep trying, the API serves meanwhile.
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._settings.kafka_bootstrap, enable_auto_commit=False
            )
            try:
                await consumer.start()
                await consumer.topics()  # loads cluster metadata, which partitions_for_topic reads
                topic = topic_name(self._settings, NOTIFICATIONS)
                parts = consumer.partitions_for_topic(topic) or set(range(self._settings.topic_partitions))
                consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
                await consumer.seek_to_end()
                # Resolve the end offsets now, so that "ready" means events from here on arrive.
                for tp in consumer.assignment():
                    await consumer.position(tp)
                self.ready.set()
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "notification feed interrupted (%s: %s); retrying in 2 s", type(exc).__name__, exc
                )
                await asyncio.sleep(2)
            finally:
                await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    if tracing.ENABLED:
                        self._handle_traced(record)
                    else:
                        self._handle(record.value)

    def _handle_traced(self, record: Any) -> None:
        parent = trace_headers.extract(record.headers)
        if parent is None:
            self._handle(record.value)
            return
        with tracing.tracer().start_as_current_span(
            "gateway deliver",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        ) as span:
            event = self._handle(record.value)
            if event is not None:
                span.set_attribute("chat4all.message_id", event.message_id)
                span.set_attribute("chat4all.kind", str(event.kind))
                if event in self._unwritten:
                    self._contexts[event] = otel_context.get_current()

    def _handle(self, raw: bytes) -> Notification | None:
        try:
            event = decode(Notification, raw)
        except Exception as exc:  # a record we cannot read is not ours to fix: count and move on
            metrics.EVENTS.labels("unreadable").inc()
            logger.warning("unreadable notification skipped: %s", exc)
            return None
        delivered = self._hub.dispatch(event)
        metrics.EVENTS.labels("delivered" if delivered else "no_client").inc()
        if (
            delivered
            and event.kind == Kind.MESSAGE_NEW
            and event.channel == Channel.NATIVE
            and event.ts_ms is not None
        ):
            self._unwritten.add(event)
        if tracing.ENABLED:
            trace.get_current_span().set_attribute("chat4all.clients", delivered)
        return event

    def written(self, event: Notification) -> None:
        """``event`` was written to a client's transport: a new native message's first write is its receipt.

        It publishes the message's DELIVERED receipt once, however many clients its recipient has.
        """
        if event not in self._unwritten:
            return
        self._unwritten.discard(event)
        task = asyncio.create_task(self._ack_delivery(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _ack_delivery(self, event: Notification) -> None:
        context = self._contexts.pop(event, None) if tracing.ENABLED else None
        token = otel_context.attach(context) if context is not None else None
        try:
            await self._publish_delivered(event)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _publish_delivered(self, event: Notification) -> None:
        update = StatusUpdate(
            message_id=event.message_id,
            conversation_id=event.conversation_id,
            ts_ms=event.ts_ms,
            recipient_id=event.user_id,
            channel=Channel.NATIVE,
            status=Status.DELIVERED,
            at_ms=now_ms(),
            receipt_keys=list(event.receipt_keys),
            source="gateway",
            sender_id=event.sender_id,
        )
        try:
            await self._publisher.publish(STATUS_UPDATES, key=event.message_id, value=encode(update))
        except Exception as exc:
            # Not lost: the receipt stays SENT and becomes DELIVERED when the user fetches history.
            logger.warning(
                "DELIVERED receipt not published (%s); GetMessages will publish it",
                exc,
                extra={"message_id": event.message_id, "conversation_id": event.conversation_id},
            )
