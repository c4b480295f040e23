"""The native DELIVERED receipt is published once a new message is written to a client's transport, not when queued."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, NoReturn

from chat4all.settings import Settings
from gateway.client_loop import run_client
from gateway.hub import Hub
from gateway.notifications import NotificationFeed


class _Publisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, topic: str, *, key: str, value: bytes) -> None:
        self.published.append((topic, json.loads(value)))


class _Sessions:
    async def open(self, *, user_id: str, transport: str) -> str:
        return uuid.uuid4().hex

    async def heartbeat(self, *, user_id: str, session_id: str) -> None:
        pass

    async def close(self, *, user_id: str, session_id: str) -> None:
        pass


async def _forever() -> NoReturn:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _record(user_id: str) -> bytes:
    return json.dumps(
        {
            "user_id": user_id,
            "kind": "message.new",
            "message_id": uuid.uuid4().hex,
            "conversation_id": "c1",
            "at_ms": 1,
            "ts_ms": 1,
            "sender_id": "s1",
            "content": "hi",
            "channel": "native",
            "receipt_keys": [f"{user_id}:native"],
        }
    ).encode()


class _Client:
    """A connected client whose transport write blocks until ``release()``."""

    def __init__(self, *, hub: Hub, feed: NotificationFeed, user_id: str) -> None:
        self.gate = asyncio.Event()
        self.written: list[str] = []

        async def send(event: Any) -> None:
            await self.gate.wait()
            self.written.append(event.message_id)

        self.task = asyncio.create_task(
            run_client(
                user_id=user_id,
                transport="test",
                hub=hub,
                sessions=_Sessions(),
                heartbeat_seconds=60,
                send=send,
                on_written=feed.written,
                guard=_forever,
            )
        )


async def _setup(clients: int) -> tuple[Hub, NotificationFeed, _Publisher, list[_Client], str]:
    hub, publisher, user_id = Hub(queue_size=10), _Publisher(), str(uuid.uuid4())
    feed = NotificationFeed(settings=Settings(), hub=hub, publisher=publisher)
    cs = [_Client(hub=hub, feed=feed, user_id=user_id) for _ in range(clients)]
    while hub.connected(user_id) < clients:
        await asyncio.sleep(0.01)
    return hub, feed, publisher, cs, user_id


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


async def test_delivered_waits_for_the_write_to_the_transport() -> None:
    hub, feed, publisher, (client,), user_id = await _setup(1)
    feed._handle(_record(user_id))
    await _settle()
    assert publisher.published == [], "DELIVERED published while the event was only queued"
    client.gate.set()
    await _settle()
    assert len(client.written) == 1
    ((topic, update),) = publisher.published
    assert topic.endswith("status-updates") and update["status"] == "DELIVERED"
    assert update["recipient_id"] == user_id and update["channel"] == "native"
    client.task.cancel()
    await asyncio.gather(client.task, return_exceptions=True)


async def test_two_clients_written_publish_one_receipt() -> None:
    hub, feed, publisher, clients, user_id = await _setup(2)
    feed._handle(_record(user_id))
    for c in clients:
        c.gate.set()
    await _settle()
    assert [len(c.written) for c in clients] == [1, 1]
    assert len(publisher.published) == 1
    for c in clients:
        c.task.cancel()
    await asyncio.gather(*(c.task for c in clients), return_exceptions=True)


async def test_a_client_gone_before_the_write_publishes_nothing() -> None:
    hub, feed, publisher, (client,), user_id = await _setup(1)
    feed._handle(_record(user_id))
    await _settle()
    client.task.cancel()  # the connection dropped while the frame was still waiting to be written
    await asyncio.gather(client.task, return_exceptions=True)
    await _settle()
    assert publisher.published == []
    assert hub.connected(user_id) == 0
