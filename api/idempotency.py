"""Idempotent sends: the claim on (sender, client_message_id), a Redis lock and cache in front of a Cassandra LWT.

A send with a client_message_id either claims the key (and publishes a new message) or finds it
claimed (and answers that message again). The guarantee: a retried send is stored once and
answers the same message_id and timestamp, also across API restarts and after Redis forgets.

- Cassandra decides: ``INSERT INTO client_messages ... IF NOT EXISTS`` (a lightweight
  transaction, linearizable) either writes this call's row or returns the row an earlier send
  wrote. The row has no TTL and keeps a fingerprint of the request.
- Redis spares Cassandra the duplicates: ``SET chat4all:cmid:<sender>:<key> "p|..." NX PX GET``
  lets one of several concurrent sends with a key run the LWT (duplicates would otherwise
  contend in Paxos, each costing a round or a CAS timeout); the others wait for its answer
  (``d|...``, kept ``CHAT4ALL_API_IDEMPOTENCY_CACHE_SECONDS``), and a retry within that time is
  answered from Redis alone. A lock whose holder died lapses after a storage timeout; a holder
  that fails or is cancelled deletes its lock at once.
- Redis is never trusted alone: losing a key (TTL, a crash) only means the next send asks
  Cassandra again, and two holders at once (a lapsed lock) still get one LWT winner.

The fingerprint (conversation, content, file_id, channels) lets SendMessage refuse a key reused
for a different request (INVALID_ARGUMENT) instead of answering the first message.
docs/api.md has the measurements behind this shape (a plain read + write instead of the LWT,
Paxos v2).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass

import grpc
from redis.asyncio import Redis

from api.db.client_messages import ClientMessageRepository
from api.deadline import budget
from api.errors import DependencyUnavailable
from chat4all.clock import as_utc
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

_PREFIX = "chat4all:cmid:"
_PENDING, _DONE = "p|", "d|"
# Polling a pending claim: first after 2 ms, then at most every 50 ms.
_POLL_FIRST, _POLL_MAX = 0.002, 0.05
# KEYS[1]; ARGV[1] the value this process wrote. Deletes the key only if it still holds that value.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def fingerprint(
    *, conversation_id: uuid.UUID, content: str, file_id: uuid.UUID | None, channels: list[str]
) -> str:
    """SHA-256 (hex) of what makes two sends the same message; channel order does not matter."""
    canonical = json.dumps(
        [1, str(conversation_id), content, str(file_id) if file_id else "", sorted(channels)],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class ClaimedMessage:
    """The message a client_message_id is claimed for, as stored in Redis and Cassandra."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    ts_ms: int
    fingerprint: str | None  # None for claims stored before fingerprints were kept

    def encode(self) -> str:
        """The stored form: a done marker, then the fields separated by ``|``."""
        return f"{_DONE}{self.message_id}|{self.conversation_id}|{self.ts_ms}|{self.fingerprint or ''}"

    @classmethod
    def decode(cls, value: str) -> ClaimedMessage:
        """The claim of a stored value (``encode``'s form)."""
        message_id, conversation_id, ts_ms, fp = value[len(_DONE) :].split("|")
        return cls(
            message_id=uuid.UUID(message_id),
            conversation_id=uuid.UUID(conversation_id),
            ts_ms=int(ts_ms),
            fingerprint=fp or None,
        )


@dataclass(frozen=True, kw_only=True)
class Claim:
    """The result of claiming a client_message_id: the message it holds, and whether it is a replay."""

    message: ClaimedMessage
    replay: bool  # True: an earlier send holds the key, answer its message; False: this call publishes


class SendClaims:
    """Claims of client_message_ids for one API process (shared state lives in Redis and Cassandra)."""

    def __init__(self, *, redis: Redis, claims: ClientMessageRepository, settings: Settings) -> None:
        self._redis = redis
        self._claims = claims
        self._storage_timeout = settings.api_storage_timeout_seconds
        self._cache_ms = int(settings.api_idempotency_cache_seconds * 1000)
        # Longer than a holder's LWT may take; only bounds how long others wait if it dies.
        self._lock_ms = int((self._storage_timeout + 1.0) * 1000)
        self._compare_and_delete = redis.register_script(_COMPARE_AND_DELETE)

    @staticmethod
    def _key(sender: uuid.UUID, client_message_id: str) -> str:
        return f"{_PREFIX}{sender}:{client_message_id}"

    async def claim(
        self,
        sender: uuid.UUID,
        client_message_id: str,
        proposed: ClaimedMessage,
        *,
        context: grpc.aio.ServicerContext | None,
    ) -> Claim:
        """Claim the key for ``proposed``, or the message an earlier send claimed it for."""
        key = self._key(sender, client_message_id)
        pending = f"{_PENDING}{proposed.message_id}"
        deadline = time.monotonic() + budget(context, self._storage_timeout)
        while True:
            async with asyncio.timeout_at(self._loop_time(deadline)):
                held = await self._redis.set(key, pending, nx=True, px=self._lock_ms, get=True)
            if held is None:
                return await self._as_holder(sender, client_message_id, pending, proposed, context)
            if held.startswith(_DONE):
                return Claim(message=ClaimedMessage.decode(held), replay=True)
            done = await self._wait_for_holder(key, deadline)
            if done is not None:
                return Claim(message=done, replay=True)
            # The holder gave up (its lock is gone): try again from the start.

    async def _as_holder(
        self,
        sender: uuid.UUID,
        client_message_id: str,
        pending: str,
        proposed: ClaimedMessage,
        context: grpc.aio.ServicerContext | None,
    ) -> Claim:
        key = self._key(sender, client_message_id)
        claim: Claim | None = None
        try:
            held = await self._claims.claim(
                sender_id=sender,
                client_message_id=client_message_id,
                message_id=proposed.message_id,
                conversation_id=proposed.conversation_id,
                ts=as_utc(proposed.ts_ms),
                fingerprint=proposed.fingerprint,
                context=context,
            )
            if held is None:
                claim = Claim(message=proposed, replay=False)
            else:  # an earlier send's row (Redis had forgotten it, or never saw it)
                earlier = ClaimedMessage(
                    message_id=held.message_id,
                    conversation_id=held.conversation_id,
                    ts_ms=held.ts_ms,
                    fingerprint=held.fingerprint,
                )
                claim = Claim(message=earlier, replay=True)
            try:
                async with asyncio.timeout(self._storage_timeout):
                    await self._redis.set(key, claim.message.encode(), px=self._cache_ms)
            except Exception as exc:
                # Cassandra has decided; Redis only caches the answer. Others waiting on the lock
                # ask Cassandra themselves once it lapses.
                logger.warning("could not cache a client_message_id claim: %s: %s", type(exc).__name__, exc)
            return claim
        finally:
            if claim is None:
                # A failed or cancelled holder frees the key at once rather than after its lock lapses.
                task = asyncio.ensure_future(self._drop(key, pending))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _drop(self, key: str, value: str) -> None:
        try:
            async with asyncio.timeout(self._storage_timeout):
                await self._compare_and_delete(keys=[key], args=[value])
        except Exception as exc:  # a lock lapses by itself
            logger.warning("could not drop a client_message_id key: %s: %s", type(exc).__name__, exc)

    async def _wait_for_holder(self, key: str, deadline: float) -> ClaimedMessage | None:
        """The holder's answer once it has one; None if its lock went away without one."""
        pause = _POLL_FIRST
        while time.monotonic() + pause < deadline:
            await asyncio.sleep(pause)
            pause = min(_POLL_MAX, pause * 2)
            async with asyncio.timeout_at(self._loop_time(deadline)):
                value = await self._redis.get(key)
            if value is None:
                return None
            if value.startswith(_DONE):
                return ClaimedMessage.decode(value)
        raise DependencyUnavailable("a send with this client_message_id is still in progress; try again")

    async def release(self, sender: uuid.UUID, client_message_id: str, message: ClaimedMessage) -> None:
        """Kafka never took the claimed message: forget the claim, so a retry starts clean."""
        try:
            await self._claims.release(
                sender_id=sender, client_message_id=client_message_id, message_id=message.message_id
            )
            await self._drop(self._key(sender, client_message_id), message.encode())
        except Exception as exc:
            # Harmless if it stays: a retry with the same client_message_id publishes under this id.
            logger.warning(
                "could not release a client_message_id claim: %s",
                exc,
                extra={"message_id": str(message.message_id)},
            )

    @staticmethod
    def _loop_time(deadline: float) -> float:
        """``deadline`` (time.monotonic) on the event loop's clock, for asyncio.timeout_at."""
        loop = asyncio.get_running_loop()
        return loop.time() + (deadline - time.monotonic())
