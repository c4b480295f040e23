"""Stand-ins for pure unit tests only (integration tests use the real servers)."""

from __future__ import annotations


class FakeRedis:
    """Just enough of redis.asyncio for TokenService: exists and set with a TTL."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, int]] = {}

    async def exists(self, key: str) -> int:
        return int(key in self.data)

    async def set(self, key: str, value: str, ex: int) -> None:
        self.data[key] = (value, ex)
