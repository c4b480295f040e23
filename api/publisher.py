"""The API's Kafka producer (plain aiokafka, acks=all): started lazily, restarted after a failure.

With tracing on and the call sampled, ``publish`` runs in a PRODUCER span and every record carries
the trace context in its headers (chat4all/trace_headers.py), so the worker's agents continue the
call's trace; an unsampled call's records carry no trace context.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanKind

from api.deadline import budget
from api.errors import DependencyUnavailable
from chat4all import producing, trace_headers, tracing
from chat4all.producing import CachedPartitioner
from chat4all.settings import Settings
from chat4all.topic_names import topic_name

logger = logging.getLogger(__name__)


class NotPublished(DependencyUnavailable):
    """Kafka never took the event: it is certainly not on the topic."""


class OutcomeUnknown(DependencyUnavailable):
    """The event reached the producer's buffer but was not acknowledged in time: it may still land."""


class Publisher:
    """Publishes wire records; ``publish`` returns once every in-sync replica has the event."""

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        """True once the producer has started."""
        return self._producer is not None

    async def _start(self) -> None:
        timeout_ms = int(self._settings.api_publish_timeout_seconds * 1000)
        # Requests then carry every partition's waiting events, not one partition's at a time.
        producing.install(drain_by_broker=self._settings.producer_drain_by_broker)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id="chat4all-api",
            acks="all",
            # aiokafka keeps one request in flight per broker, so events that arrive while one is
            # out are batched anyway. 1 ms more still fills requests fuller under load (a
            # producer alone at 1,500 events/s: 140-160 -> 120-125 us of CPU per event; the
            # whole API at its limit: 3-5 % less CPU per call, measured), for about 1.4 ms on a
            # lone send (sequential p50 0.7 -> 2.1 ms).
            linger_ms=self._settings.api_producer_linger_ms,
            partitioner=CachedPartitioner(),
            request_timeout_ms=timeout_ms,
            retry_backoff_ms=100,
        )
        try:
            await producer.start()
        except Exception:
            await producer.stop()
            raise
        self._producer = producer
        logger.info("Kafka producer connected to %s", self._settings.kafka_bootstrap)

    async def producer(self, timeout: float) -> AIOKafkaProducer:
        """The producer, started first if needed; NotPublished if Kafka does not answer in ``timeout``."""
        if self._producer is not None:
            return self._producer
        task = self._starting
        if task is None or (task.done() and task.exception() is not None):
            task = self._starting = asyncio.ensure_future(self._start())
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            raise NotPublished("Kafka is unavailable (no connection yet); try again") from None
        except Exception as exc:
            logger.warning("Kafka producer could not start: %s", exc)
            raise NotPublished("Kafka is unavailable; try again") from None
        assert self._producer is not None
        return self._producer

    async def publish(
        self, topic: str, *, key: str, value: bytes, context: grpc.aio.ServicerContext | None = None
    ) -> None:
        """Publish to ``topic`` (prefixed per settings) and wait for acks=all.

        NotPublished if Kafka never took it, OutcomeUnknown if unsure.
        """
        # Only under a sampled span: any other publish would make a span that records nothing.
        if tracing.recording():
            with tracing.tracer().start_as_current_span(
                f"publish {topic}",
                kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
            ):
                await self._publish(topic, key=key, value=value, context=context)
        else:
            await self._publish(topic, key=key, value=value, context=context)

    async def _publish(
        self, topic: str, *, key: str, value: bytes, context: grpc.aio.ServicerContext | None
    ) -> None:
        topic = topic_name(self._settings, topic)
        cap = self._settings.api_publish_timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget(context, cap)
        producer = self._producer or await self.producer(max(0.05, deadline - loop.time()))
        buffered = False
        try:
            # One timer for both steps (a timer per step was a visible cost at 2,000 calls/s).
            async with asyncio.timeout_at(deadline):
                # send() waits for the topic's metadata and buffer space; cut short there,
                # nothing was buffered.
                delivery = await producer.send(
                    topic,
                    value=value,
                    key=key.encode(),
                    headers=trace_headers.inject() if tracing.ENABLED else None,
                )
                buffered = True
                # Shielded: giving up on the ack must not cancel aiokafka's own future.
                await asyncio.shield(delivery)
        except (TimeoutError, Exception) as exc:
            if not buffered:
                logger.warning("Kafka did not take an event for %s: %s", topic, exc)
                raise NotPublished("Kafka is unavailable; try again") from None
            logger.warning("Kafka did not acknowledge an event for %s: %s", topic, exc)
            raise OutcomeUnknown("Kafka did not acknowledge the event in time; try again") from None

    async def send_nowait(self, topic: str, *, key: str, value: bytes) -> asyncio.Future | None:
        """Buffer an event without waiting for its ack; None if Kafka is not connected (a best effort)."""
        if self._producer is None:
            return None
        return await self._producer.send(
            topic_name(self._settings, topic),
            value=value,
            key=key.encode(),
            headers=trace_headers.inject() if tracing.ENABLED else None,
        )

    async def close(self) -> None:
        """Stop the producer (flushing what it buffered), if it started."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
