"""Idempotent sends: the claim on (sender, client_message_id), a Redis lock in front of a Cassandra record.

A send with a client_message_id either claims the key (and publishes a new message) or finds it
claimed (and answers that message again). The guarantee: a retried send is stored once and
answers the same message_id and timestamp, also across API restarts and after Redis forgets.

- Redis ``SET chat4all:cmid:<sender>:<key> "p|..." NX PX <lock> GET`` is the lock: of two
  concurrent sends with one key exactly one gets it; the other finds ``p|`` (pending) and waits
  for the holder's answer, or finds ``d|...`` (done) and replays it.
- The holder reads ``client_messages`` (the durable record, no TTL: Redis keeps claims only
  ``CHAT4ALL_API_IDEMPOTENCY_CACHE_SECONDS``, and may lose the last second of them in a crash).
  A row there is an earlier claim: replayed. Otherwise it writes the row (plain INSERT), then
  ``d|...`` to Redis, and only then may the message be published.
- The lock lasts longer than the holder may take for its read and write (each bounded by
  ``CHAT4ALL_API_STORAGE_TIMEOUT_SECONDS``), and a holder that overran it publishes nothing. If
  it fails or is cancelled before ``d|``, it deletes its lock, so a retry need not wait.
- A row written late (a holder that timed out, its INSERT still queued in Cassandra) loses to a
  later claim's row: the driver stamps writes on the client, last write wins.

The one case this does not cover, where the Cassandra LWT it replaces did: Redis losing a lock
in a crash while its holder and a concurrent retry of the same key are both between their
Redis call and their INSERT. Both would then publish. docs/api.md has the measurements behind
the choice.

The record keeps a fingerprint of the request (conversation, content, file_id, channels): a key
reused for a different request is refused (INVALID_ARGUMENT) instead of answering the first one.
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

from api.convert import datetime_from_ms, ms_from_datetime
from api.deadline import budget
from api.errors import DependencyUnavailable
from api.store import Store
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

_PREFIX = "chat4all:cmid:"
_PENDING, _DONE = "p|", "d|"
# Polling a pending claim: first after 2 ms, then at most every 50 ms.
_POLL_FIRST, _POLL_MAX = 0.002, 0.05
# KEYS[1]; ARGV[1] the holder's own pending value. Deletes the lock only if it is still that one.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def fingerprint(*, conversation_id: uuid.UUID, content: str, file_id: uuid.UUID | None, channels: list[str]) -> str:
    """SHA-256 (hex) of what makes two sends the same message; channel order does not matter."""
    canonical = json.dumps(
        [1, str(conversation_id), content, str(file_id) if file_id else "", sorted(channels)],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class ClaimedMessage:
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    ts_ms: int
    fingerprint: str | None  # None for claims stored before fingerprints were kept

    def encode(self) -> str:
        return f"{_DONE}{self.message_id}|{self.conversation_id}|{self.ts_ms}|{self.fingerprint or ''}"

    @classmethod
    def decode(cls, value: str) -> ClaimedMessage:
        message_id, conversation_id, ts_ms, fp = value[len(_DONE) :].split("|")
        return cls(
            message_id=uuid.UUID(message_id), conversation_id=uuid.UUID(conversation_id), ts_ms=int(ts_ms), fingerprint=fp or None
        )


@dataclass(frozen=True, kw_only=True)
class Claim:
    message: ClaimedMessage
    replay: bool  # True: an earlier send holds the key, answer its message; False: this call publishes


class SendClaims:
    """Claims of client_message_ids for one API process (shared state lives in Redis and Cassandra)."""

    def __init__(self, *, redis: Redis, store: Store, settings: Settings) -> None:
        self._redis = redis
        self._store = store
        self._storage_timeout = settings.api_storage_timeout_seconds
        self._cache_ms = int(settings.api_idempotency_cache_seconds * 1000)
        # The holder's Cassandra read and write each take at most a storage timeout.
        self._lock_seconds = 2 * self._storage_timeout + 1.0
        self._release_lock = redis.register_script(_RELEASE_LOCK)

    @staticmethod
    def _key(sender: uuid.UUID, client_message_id: str) -> str:
        return f"{_PREFIX}{sender}:{client_message_id}"

    async def claim(
        self, sender: uuid.UUID, client_message_id: str, proposed: ClaimedMessage, *, context: grpc.aio.ServicerContext | None
    ) -> Claim:
        """Claim the key for ``proposed``, or the message an earlier send claimed it for."""
        key = self._key(sender, client_message_id)
        deadline = time.monotonic() + budget(context, self._storage_timeout)
        while True:
            # The record is needed whenever the lock is ours: read it while asking for the lock.
            read = asyncio.ensure_future(self._store.execute("get_client_message", (sender, client_message_id), context=context))
            pending = f"{_PENDING}{proposed.message_id}"
            try:
                async with asyncio.timeout_at(self._loop_time(deadline)):
                    held = await self._redis.set(key, pending, nx=True, px=int(self._lock_seconds * 1000), get=True)
            except BaseException:
                read.cancel()
                raise
            if held is None:
                return await self._as_holder(sender, client_message_id, pending, read, proposed, context)
            read.cancel()
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
        read: asyncio.Future,
        proposed: ClaimedMessage,
        context: grpc.aio.ServicerContext | None,
    ) -> Claim:
        key = self._key(sender, client_message_id)
        lock_until = time.monotonic() + self._lock_seconds
        finished = False
        try:
            row = (await read).one()
            if row is not None:
                message = ClaimedMessage(
                    message_id=row.message_id,
                    conversation_id=row.conversation_id,
                    ts_ms=ms_from_datetime(row.ts),
                    fingerprint=row.fingerprint,
                )
                await self._redis.set(key, message.encode(), px=self._cache_ms)
                finished = True
                return Claim(message=message, replay=True)
            await self._store.execute(
                "insert_client_message",
                (
                    sender,
                    client_message_id,
                    proposed.message_id,
                    proposed.conversation_id,
                    datetime_from_ms(proposed.ts_ms),
                    proposed.fingerprint,
                ),
                context=context,
            )
            if time.monotonic() >= lock_until:
                # Another send may hold the key by now: publishing could make two messages. The
                # row is written, so a retry (after this lock lapses) replays it.
                raise DependencyUnavailable("storing the client_message_id took too long; try again")
            await self._redis.set(key, proposed.encode(), px=self._cache_ms)
            finished = True
            return Claim(message=proposed, replay=False)
        finally:
            if not finished:
                # A failed or cancelled holder frees the key at once rather than after its lock lapses.
                task = asyncio.ensure_future(self._drop_lock(key, pending))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _drop_lock(self, key: str, pending: str) -> None:
        try:
            async with asyncio.timeout(self._storage_timeout):
                await self._release_lock(keys=[key], args=[pending])
        except Exception as exc:  # it lapses by itself
            logger.warning("could not drop a client_message_id lock: %s: %s", type(exc).__name__, exc)

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
        key = self._key(sender, client_message_id)
        try:
            await self._store.execute("delete_client_message", (sender, client_message_id))
            async with asyncio.timeout(self._storage_timeout):
                await self._release_lock(keys=[key], args=[message.encode()])
        except Exception as exc:
            # Harmless if it stays: a retry with the same client_message_id publishes under this id.
            logger.warning("could not release a client_message_id claim: %s", exc, extra={"message_id": str(message.message_id)})

    @staticmethod
    def _loop_time(deadline: float) -> float:
        """``deadline`` (time.monotonic) on the event loop's clock, for asyncio.timeout_at."""
        loop = asyncio.get_running_loop()
        return loop.time() + (deadline - time.monotonic())

