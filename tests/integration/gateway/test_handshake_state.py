"""A WebSocket handshake that fails after authentication leaves nothing in the gateway.

In process, with the real Redis and websockets server: no slot, no subscription, no session, no
connection kept.
"""

from __future__ import annotations

import asyncio
import gc
import uuid

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection

from api.tokens import TokenService
from chat4all.redis_client import redis_client
from chat4all.settings import Settings
from gateway.hub import Hub
from gateway.limits import StreamLimits
from gateway.revocations import RevocationNotices
from gateway.sessions import SessionRegistry
from gateway.streams import LiveStreams
from gateway.websocket import WebSocketGateway
from tests.integration.gateway.presence import presence

pytestmark = pytest.mark.integration


def _server_connections() -> list[ServerConnection]:
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is ServerConnection]  # not weak proxies to one


def _holds(root: object, needle: str) -> bool:
    """Whether ``needle`` is reachable from ``root`` through our own objects and plain containers."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if needle in obj:
                return True
        elif isinstance(obj, dict):
            todo += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            todo += list(obj)
        elif type(obj).__module__.split(".")[0] in ("gateway", "api") and hasattr(obj, "__dict__"):
            todo += list(vars(obj).values())
    return False


async def _raw(port: int, headers: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def test_failed_handshakes_after_auth_leave_nothing(stack: Settings) -> None:
    redis = redis_client(stack)
    tokens = TokenService(secret="x" * 40, issuer="chat4all-test", ttl_seconds=60, redis=redis)
    hub, limits = Hub(queue_size=10), StreamLimits(per_user=8, total=100)
    notices = RevocationNotices(redis=redis_client(stack))
    streams = LiveStreams(
        hub=hub,
        sessions=SessionRegistry(redis=redis, ttl_seconds=60),
        limits=limits,
        tokens=tokens,
        notices=notices,
        on_written=lambda event: None,
        heartbeat_seconds=60,
        token_timeout=5,
    )
    gateway = WebSocketGateway(streams=streams, tokens=tokens, auth_timeout=5)
    port = await gateway.start(host="127.0.0.1", port=0)
    user_id = str(uuid.uuid4())
    token, _ = tokens.issue(user_id)
    bearer = f"Authorization: Bearer {token}\r\n"
    try:
        for headers in (
            bearer,  # authenticated, then no Upgrade: 426
            bearer
            + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",  # no key: 400
        ):
            for _ in range(5):
                reply = await _raw(port, headers)
                assert reply.startswith((b"HTTP/1.1 426", b"HTTP/1.1 400")), reply[:100]
        await asyncio.sleep(0.2)
        assert _server_connections() == []
        assert not _holds(gateway, user_id) and not _holds(gateway, token)
        assert limits.open_streams() == 0 and limits.open_streams(user_id) == 0
        assert hub.connected(user_id) == 0 and notices.watched() == 0
        assert await presence(stack, user_id) == set()

        # The same checks see an open connection: they are not blind.
        async with connect(
            f"ws://127.0.0.1:{port}/v1/events", additional_headers={"Authorization": f"Bearer {token}"}
        ):
            for _ in range(50):
                if hub.connected(user_id):
                    break
                await asyncio.sleep(0.05)
            assert (
                limits.open_streams(user_id) == 1 and hub.connected(user_id) == 1 and notices.watched() == 1
            )
            assert len(_server_connections()) == 1
            assert _holds(gateway, user_id)
        for _ in range(50):
            if limits.open_streams() == 0:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert limits.open_streams() == 0 and hub.connected(user_id) == 0 and notices.watched() == 0
        assert _server_connections() == []
        assert not _holds(gateway, user_id) and not _holds(gateway, token)
        assert await presence(stack, user_id) == set()
    finally:
        await gateway.stop()
        await notices.stop()
        await redis.aclose()
