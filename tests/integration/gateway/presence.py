"""Reads a user's live sessions from Redis, as the gateway records them."""

from __future__ import annotations

import asyncio
import time

from chat4all.redis_client import redis_client
from chat4all.settings import Settings


async def presence(settings: Settings, user_id: str) -> set[str]:
    """The session ids of the user's live connections."""
    client = redis_client(settings)
    try:
        return await client.smembers(f"chat4all:presence:{user_id}")
    finally:
        await client.aclose()


async def wait_presence(settings: Settings, user_id: str, *, online: bool, timeout: float, what: str) -> None:
    """Wait until the user has (``online``) or has no live session; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while bool(await presence(settings, user_id)) != online:
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)
