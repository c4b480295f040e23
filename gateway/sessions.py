"""Client sessions in Redis: who is connected, through which transport and gateway, kept by heartbeat."""

from __future__ import annotations

import socket
import uuid

from redis.asyncio import Redis

from chat4all.clock import now_ms

_SESSION = "chat4all:session:"
_PRESENCE = "chat4all:presence:"


class SessionRegistry:
    """Sessions and presence in Redis; they expire by themselves ``ttl_seconds`` after the last heartbeat.

    So a gateway that dies leaves no user shown online for long.
    """

    def __init__(self, *, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._gateway = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"

    async def open(self, *, user_id: str, transport: str) -> str:
        """Register a session of ``user_id`` on ``transport`` and mark the user online; returns its id."""
        session_id = uuid.uuid4().hex
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _SESSION + session_id,
                mapping={
                    "user_id": user_id,
                    "transport": transport,
                    "gateway": self._gateway,
                    "connected_at": str(now_ms()),
                },
            )
            pipe.expire(_SESSION + session_id, self._ttl)
            pipe.sadd(_PRESENCE + user_id, session_id)
            pipe.expire(_PRESENCE + user_id, self._ttl)
            await pipe.execute()
        return session_id

    async def heartbeat(self, *, user_id: str, session_id: str) -> None:
        """Keep the session and the user's presence alive for another ``ttl_seconds``."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.expire(_SESSION + session_id, self._ttl)
            pipe.expire(_PRESENCE + user_id, self._ttl)
            await pipe.execute()

    async def close(self, *, user_id: str, session_id: str) -> None:
        """Remove the session and take it off the user's presence."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_SESSION + session_id)
            pipe.srem(_PRESENCE + user_id, session_id)
            await pipe.execute()

    async def online_sessions(self, user_id: str) -> list[dict[str, str]]:
        """The user's live sessions (entries whose session key expired are dropped)."""
        ids = await self._redis.smembers(_PRESENCE + user_id)
        out = []
        for sid in ids:
            data = await self._redis.hgetall(_SESSION + sid)
            if data:
                out.append({"session_id": sid, **data})
            else:
                await self._redis.srem(_PRESENCE + user_id, sid)
        return out
