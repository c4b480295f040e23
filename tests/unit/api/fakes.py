"""Stand-ins for pure unit tests only (integration tests use the real servers)."""

from __future__ import annotations


class FakeRedis:
    """Just enough of redis.asyncio for TokenService: exists and set with a TTL."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, int]] = {}
        self.lookups = 0  # exists() calls, to see what a cache spared

    async def exists(self, key: str) -> int:
        self.lookups += 1
        return int(key in self.data)

    async def set(self, key: str, value: str, ex: int) -> None:
        self.data[key] = (value, ex)
