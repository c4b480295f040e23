"""Revocation notices from Redis pub/sub (api.tokens publishes each revoked jti): ends streams at once.

A notice is fire-and-forget: one published while this gateway is not subscribed (Redis restarting,
the API starting) is missed, and the stream's periodic token re-check (every
CHAT4ALL_REALTIME_HEARTBEAT_SECONDS) ends it instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.asyncio import Redis

from api.tokens import REVOCATIONS_CHANNEL

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 2.0


class RevocationNotices:
    """One pub/sub subscription per gateway; ``watch(jti)`` gives an Event set when that jti is revoked."""

    def __init__(self, *, redis: Redis) -> None:
        self._redis = redis  # a client of its own: the subscription holds its connection for good
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        """Start the pub/sub subscription in the background (``subscribed`` is set once it holds)."""
        self._task = asyncio.create_task(self._run(), name="revocation-notices")

    async def stop(self) -> None:
        """Stop the subscription and close its Redis client."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    def watch(self, jti: str) -> asyncio.Event:
        """An Event that is set when token ``jti`` is revoked."""
        event = asyncio.Event()
        self._waiters[jti].add(event)
        return event

    def unwatch(self, jti: str, event: asyncio.Event) -> None:
        """Stop waiting on ``jti`` with ``event`` (the stream ended)."""
        waiters = self._waiters.get(jti)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[jti]

    def watched(self) -> int:
        """Token ids with at least one stream waiting on them."""
        return len(self._waiters)

    def notify(self, jti: str) -> None:
        """Set every Event that waits on ``jti`` (a revocation notice arrived)."""
        for event in self._waiters.get(jti, ()):
            event.set()

    async def _run(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REVOCATIONS_CHANNEL)
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self.notify(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                logger.warning(
                    "revocation notices interrupted (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    exc,
                    _RETRY_SECONDS,
                )
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
