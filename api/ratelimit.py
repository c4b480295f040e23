"""Per-user token bucket in Redis: one Lua script, so concurrent API processes share it atomically."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from redis.asyncio import Redis

from api.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

# KEYS[1] bucket hash; ARGV: rate (tokens/s), burst, cost. Uses the Redis server's clock so
# every API process agrees on time. Returns {allowed (1|0), milliseconds until enough tokens}.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
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
local allowed = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait_ms}
"""


@dataclass(frozen=True, kw_only=True)
class Decision:
    allowed: bool
    retry_after_seconds: float


class RateLimiter:
    """Token bucket per key: ``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, *, redis: Redis, rate: float, burst: int, prefix: str = "chat4all:ratelimit:") -> None:
        self._redis = redis
        self._rate = rate
        self._burst = burst
        self._prefix = prefix
        self._script = redis.register_script(_TOKEN_BUCKET)

    async def acquire(self, key: str, *, cost: int = 1, timeout: float = 5.0) -> Decision:
        """Take ``cost`` tokens if there are enough; else say how long until there are."""
        try:
            allowed, wait_ms = await asyncio.wait_for(
                self._script(keys=[self._prefix + key], args=[self._rate, self._burst, cost]), timeout
            )
        except TimeoutError:
            raise DependencyUnavailable("Redis is unavailable (rate limit); try again") from None
        return Decision(allowed=bool(int(allowed)), retry_after_seconds=math.ceil(int(wait_ms)) / 1000)
