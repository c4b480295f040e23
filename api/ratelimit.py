"""Per-user token bucket in Redis (one Lua script, shared atomically by every API process).

Spent through short local leases, so a busy sender costs a Redis call per few messages, not per message.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from api.errors import DependencyUnavailable

# KEYS[1] bucket hash; ARGV: rate (tokens/s), burst, want. Uses the Redis server's clock so every
# API process agrees on time. Takes min(want, whole tokens available) and returns
# {granted, milliseconds until one token is there (when none was granted)}.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local granted = 0
local wait_ms = 0
if tokens >= 1 then
  granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {granted, wait_ms}
"""

# A lease's tokens are spent within this long or dropped (never handed back): a user who moves
# to another API process finds his tokens in Redis again by then.
LEASE_SECONDS = 1.0
# Local state of users idle this long is dropped once there are many users.
_IDLE_SECONDS = 10.0
_PRUNE_ABOVE = 10_000


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Whether a send may go now, and if not how long until it may."""

    allowed: bool
    retry_after_seconds: float


_ALLOWED = Decision(allowed=True, retry_after_seconds=0.0)


class _Lease:
    """Tokens of one user taken from Redis and not yet spent, or a refusal that still holds."""

    __slots__ = ("tokens", "valid_until", "size", "denied_until", "pending")

    def __init__(self) -> None:
        self.tokens = 0
        self.valid_until = 0.0
        self.size = 0  # tokens asked for last time
        self.denied_until = 0.0
        self.pending: asyncio.Future[Decision | None] | None = None  # the Redis call under way


class RateLimiter:
    """Token bucket per key: ``rate`` tokens per second, at most ``burst`` saved up.

    The bucket lives in Redis. A process takes tokens from it in leases of up to ``lease_max``
    (1 for a first or occasional message, doubling while the sender keeps spending them, so a
    sender at 20 messages/s costs about two Redis calls a second) and spends them locally for at
    most LEASE_SECONDS. No process ever hands out a token the Redis bucket did not give it, so the
    limit holds across processes; the price is that a lease's unspent tokens (fewer than
    ``lease_max``) are lost when it lapses. A refusal is remembered locally until Redis said a
    token would be back, so a client hammering past its limit does not hammer Redis too.
    ``lease_max=1`` asks Redis for every message.
    """

    def __init__(
        self,
        *,
        redis: Redis,
        rate: float,
        burst: int,
        lease_max: int = 1,
        prefix: str = "chat4all:ratelimit:",
    ) -> None:
        self._redis = redis
        self._rate = rate
        self._burst = burst
        self._lease_max = max(1, min(lease_max, burst))
        self._prefix = prefix
        self._script = redis.register_script(_TOKEN_BUCKET)
        self._leases: dict[str, _Lease] = {}

    async def acquire(self, key: str, *, timeout: float = 5.0) -> Decision:
        """Take one token if there is one; else say how long until there is."""
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= _PRUNE_ABOVE:
                self._prune()
            lease = self._leases[key] = _Lease()
        while True:
            now = time.monotonic()
            if lease.tokens > 0 and lease.valid_until > now:
                lease.tokens -= 1
                return _ALLOWED
            if lease.denied_until > now:
                return Decision(
                    allowed=False, retry_after_seconds=math.ceil((lease.denied_until - now) * 1000) / 1000
                )
            if lease.pending is not None:
                # Another call of this user is asking Redis already: share its answer.
                try:
                    async with asyncio.timeout(timeout):
                        await asyncio.shield(lease.pending)
                except TimeoutError:
                    raise DependencyUnavailable("Redis is unavailable (rate limit); try again") from None
                continue
            return await self._take_lease(key, lease, now, timeout)

    async def _take_lease(self, key: str, lease: _Lease, now: float, timeout: float) -> Decision:
        # A sender who spent the whole last lease while it was valid gets a bigger one.
        exhausted_in_time = lease.size > 0 and lease.tokens == 0 and lease.valid_until > now
        want = min(self._lease_max, lease.size * 2) if exhausted_in_time else 1
        pending = lease.pending = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                granted, wait_ms = await self._script(
                    keys=[self._prefix + key], args=[self._rate, self._burst, want]
                )
        except TimeoutError:
            raise DependencyUnavailable("Redis is unavailable (rate limit); try again") from None
        finally:
            lease.pending = None
            if not pending.done():
                pending.set_result(None)  # waiters look at the lease again (or ask Redis themselves)
        granted, wait_ms = int(granted), int(wait_ms)
        lease.size = want
        if granted > 0:
            lease.tokens = granted - 1
            lease.valid_until = time.monotonic() + LEASE_SECONDS
            return _ALLOWED
        lease.tokens = 0
        lease.denied_until = time.monotonic() + wait_ms / 1000
        return Decision(allowed=False, retry_after_seconds=wait_ms / 1000)

    def _prune(self) -> None:
        cutoff = time.monotonic() - _IDLE_SECONDS
        self._leases = {
            k: v
            for k, v in self._leases.items()
            if v.pending is not None or max(v.valid_until, v.denied_until) > cutoff
        }
