"""The SendMessage rate limiter's leases against the real Redis: never more than the bucket, few Redis calls."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from api.ratelimit import RateLimiter
from chat4all.redis_client import redis_client
from chat4all.settings import Settings

pytestmark = pytest.mark.integration


class CountingRateLimiter(RateLimiter):
    """Counts the Lua script calls (one per lease)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.redis_calls = 0
        script = self._script

        async def counted(**kw):
            self.redis_calls += 1
            return await script(**kw)

        self._script = counted


@pytest.fixture
async def redis(stack: Settings) -> Redis:
    client = redis_client(stack)
    yield client
    await client.aclose()


async def test_a_burst_never_gets_more_than_the_bucket_across_processes(redis: Redis) -> None:
    # Two limiters stand for two API processes sharing one user's bucket.
    key = f"test-{uuid.uuid4()}"
    a, b = (CountingRateLimiter(redis=redis, rate=0.5, burst=20, lease_max=8) for _ in range(2))
    decisions = await asyncio.gather(*(limiter.acquire(key) for limiter in (a, b) for _ in range(40)))
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 20  # the burst, exactly: leases only hand out what Redis gave them
    assert all(0 < d.retry_after_seconds <= 2.0 for d in decisions if not d.allowed)  # one token at 0.5/s
    assert a.redis_calls + b.redis_calls < 40


async def test_a_steady_sender_costs_a_redis_call_per_lease_not_per_message(redis: Redis) -> None:
    key = f"test-{uuid.uuid4()}"
    limiter = CountingRateLimiter(redis=redis, rate=1000, burst=100, lease_max=10)
    for _ in range(100):
        assert (await limiter.acquire(key)).allowed
    # Leases of 1, 2, 4, 8, then 10 at a time.
    assert limiter.redis_calls <= 14


async def test_a_refusal_is_answered_locally_until_a_token_is_due(redis: Redis) -> None:
    key = f"test-{uuid.uuid4()}"
    limiter = CountingRateLimiter(redis=redis, rate=4, burst=2, lease_max=10)
    assert (await limiter.acquire(key)).allowed and (await limiter.acquire(key)).allowed
    refused = await limiter.acquire(key)
    assert not refused.allowed and 0 < refused.retry_after_seconds <= 0.26
    calls = limiter.redis_calls
    for _ in range(20):
        again = await limiter.acquire(key)
        assert not again.allowed and again.retry_after_seconds <= refused.retry_after_seconds
    assert limiter.redis_calls == calls
    await asyncio.sleep(refused.retry_after_seconds + 0.02)
    assert (await limiter.acquire(key)).allowed


async def test_leases_lapse_so_the_limit_stays_per_user_not_per_process(redis: Redis) -> None:
    key = f"test-{uuid.uuid4()}"
    a = CountingRateLimiter(redis=redis, rate=1, burst=10, lease_max=10)
    b = CountingRateLimiter(redis=redis, rate=1, burst=10, lease_max=10)
    for _ in range(4):  # leases of 1, 2, 4: 7 tokens taken, 3 still unspent in a's lease
        assert (await a.acquire(key)).allowed
    # b gets what the bucket still has (3), never a's unspent tokens on top.
    got = [await b.acquire(key) for _ in range(6)]
    assert sum(d.allowed for d in got) == 3
