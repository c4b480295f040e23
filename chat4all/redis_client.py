"""Async Redis client (redis.asyncio) for the configured server."""

from __future__ import annotations

from redis.asyncio import Redis

from chat4all.settings import Settings


def redis_client(settings: Settings) -> Redis:
    """A client for the Redis in settings; responses decoded as str."""
    return Redis(
        host=settings.redis_host, port=settings.redis_port, db=settings.redis_db, decode_responses=True
    )
