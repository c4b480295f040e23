"""Publishing to the dead-letters topic: the original record, why it was given up on, and its ids."""

from __future__ import annotations

import asyncio
import logging

import faust

from chat4all.clock import Clock, now_ms
from chat4all.wire import DeadLetter, encode
from streams import metrics

logger = logging.getLogger(__name__)


class DeadLetters:
    """Sends DeadLetter records to ``topic`` (the app's `dead-letters`)."""

    def __init__(self, *, topic: faust.TopicT, clock: Clock = now_ms) -> None:
        self._topic = topic
        self._clock = clock

    async def send(
        self,
        *,
        source: str,
        topic: str,
        key: bytes | str | None,
        payload: bytes | str,
        reason: str,
        attempts: int = 0,
        message_id: str | None = None,
        conversation_id: str | None = None,
    ) -> asyncio.Future:
        """Send a DeadLetter for a record of ``topic``; ``reason`` is a short human-readable cause.

        Returns the broker's acknowledgement (a future): a caller that acks its source event
        only after the dead letter is durable awaits it.
        """
        key_text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        payload_text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        record = DeadLetter(
            topic=topic,
            key=key_text,
            payload=payload_text,
            reason=reason,
            at_ms=self._clock(),
            attempts=attempts,
            message_id=message_id,
            conversation_id=conversation_id,
        )
        fut = await self._topic.send(key=key_text.encode() if key_text else None, value=encode(record))
        metrics.dead_letters.labels(source, reason.split(":")[0][:40]).inc()
        logger.warning(
            "dead-lettered a %s record: %s",
            topic,
            reason,
            extra={"message_id": message_id, "conversation_id": conversation_id},
        )
        return fut
