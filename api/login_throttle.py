"""Failed logins per username, in Redis: after a few failures each further attempt waits, doubling.

Two keys per username (its SHA-256, so that any string a client sends makes a short key):
- ``chat4all:login:<h>:fails``, a hash: ``fails`` (failed logins, forgotten ``window`` seconds
  after the last one) and ``until`` (Redis time in ms before which no attempt is let through);
- ``chat4all:login:<h>:pending``, a sorted set of the attempts under way (scored by when they
  are given up for lost, so that a process that died mid-attempt does not hold a slot forever).

An attempt reserves a slot before its password is hashed: at most ``threshold - fails`` attempts
run at once (one once the threshold is reached), so a concurrent flood of wrong passwords is
refused while its first attempts are still hashing, not only after they failed. The failure
that reaches ``threshold`` makes the next attempt wait ``backoff``; each later one doubles the
wait, up to ``backoff_max``. A successful login forgets the failures. Both scripts run in Redis
(one atomic step each, on Redis's clock), so every API process shares the count.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis

from api.errors import DependencyUnavailable

_PREFIX = "chat4all:login:"
# An attempt not reported back within this long is counted as given up (never as a failure).
_ATTEMPT_TTL_MS = 120_000

# KEYS: fails hash, pending zset. ARGV: threshold, backoff_ms, backoff_max_ms, attempt id, attempt ttl ms.
# Returns {1, 0} when the attempt may run (and holds a slot), {0, ms to wait} when not.
_BEGIN = """
local threshold = tonumber(ARGV[1])
local backoff = tonumber(ARGV[2])
local backoff_max = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')
local blocked = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if blocked > now then
  return {0, blocked - now}
end
local pending = redis.call('ZCARD', KEYS[2])
if pending >= math.max(1, threshold - fails) then
  -- The wait that would follow if every attempt under way failed.
  local over = math.min(40, math.max(0, fails + pending - threshold))
  return {0, math.min(backoff_max, backoff * 2 ^ over)}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
return {1, 0}
"""

# KEYS: fails hash, pending zset. ARGV: outcome (ok, failed, other), attempt id, threshold,
# backoff_ms, backoff_max_ms, window_ms. Returns the wait (ms) the failure imposed, else 0.
_FINISH = """
redis.call('ZREM', KEYS[2], ARGV[2])
if ARGV[1] == 'ok' then
  redis.call('DEL', KEYS[1])
  return 0
end
if ARGV[1] ~= 'failed' then
  return 0
end
local threshold = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local wait = 0
if fails >= threshold then
  wait = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(40, fails - threshold))
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', now + wait))
end
-- Kept through the wait and a window after it: the count grows while failures keep coming.
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', tonumber(ARGV[6]) + wait))
return string.format('%.0f', wait)
"""


class Outcome(Enum):
    """How a login attempt ended, as ``finish`` counts it."""

    OK = "ok"  # the password matched: the failures are forgotten
    FAILED = "failed"  # wrong username or password: one more failure
    OTHER = "other"  # the attempt ended otherwise (an outage, a cancelled call): not counted


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """A login attempt that may run (``allowed``) and holds a slot until ``finish``, or the wait."""

    allowed: bool
    retry_after_seconds: float
    key: str = ""
    attempt_id: str = ""


class LoginThrottle:
    """Counts failed logins per username in Redis and says when the next attempt may run."""

    def __init__(
        self,
        *,
        redis: Redis,
        threshold: int,
        backoff_seconds: float,
        backoff_max_seconds: float,
        window_seconds: float,
        timeout: float,
    ) -> None:
        self._redis = redis
        self._threshold = max(1, threshold)
        self._backoff_ms = max(1, int(backoff_seconds * 1000))
        self._backoff_max_ms = max(self._backoff_ms, int(backoff_max_seconds * 1000))
        self._window_ms = max(1000, int(window_seconds * 1000))
        self._timeout = timeout
        self._begin = redis.register_script(_BEGIN)
        self._finish = redis.register_script(_FINISH)

    @staticmethod
    def _key(username: str) -> str:
        return _PREFIX + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()

    async def begin(self, username: str, *, timeout: float | None = None) -> Attempt:
        """Reserve a slot for one attempt at ``username``, or say how long to wait."""
        key = self._key(username)
        attempt_id = uuid.uuid4().hex
        args = [self._threshold, self._backoff_ms, self._backoff_max_ms, attempt_id, _ATTEMPT_TTL_MS]
        allowed, wait_ms = await self._call(self._begin, key, args, timeout)
        if int(allowed):
            return Attempt(allowed=True, retry_after_seconds=0.0, key=key, attempt_id=attempt_id)
        return Attempt(allowed=False, retry_after_seconds=int(wait_ms) / 1000)

    async def finish(self, attempt: Attempt, outcome: Outcome, *, timeout: float | None = None) -> float:
        """Free the attempt's slot and count its outcome; the wait (s) a failure imposed."""
        args = [
            outcome.value,
            attempt.attempt_id,
            self._threshold,
            self._backoff_ms,
            self._backoff_max_ms,
            self._window_ms,
        ]
        wait_ms = await self._call(self._finish, attempt.key, args, timeout)
        return int(wait_ms) / 1000

    async def _call(self, script: object, key: str, args: list, timeout: float | None) -> object:
        try:
            async with asyncio.timeout(self._timeout if timeout is None else timeout):
                return await script(keys=[key + ":fails", key + ":pending"], args=args)  # type: ignore[operator]
        except TimeoutError:
            raise DependencyUnavailable("Redis is unavailable (login throttle); try again") from None
