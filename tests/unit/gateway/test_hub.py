"""The hub: a notification reaches every subscription of its user only; a client that falls behind overflows."""

from __future__ import annotations

import asyncio

import pytest

from chat4all.wire import Kind, Notification
from gateway.hub import Hub, SubscriptionOverflow


def _event(user_id: str, n: int) -> Notification:
    return Notification(
        user_id=user_id, kind=Kind.MESSAGE_NEW, message_id=f"m{n}", conversation_id="c", at_ms=n
    )


async def test_dispatch_reaches_every_subscription_of_that_user_only() -> None:
    hub = Hub(queue_size=10)
    a1, a2, b = hub.subscribe("a"), hub.subscribe("a"), hub.subscribe("b")
    assert hub.dispatch(_event("a", 1)) == 2
    assert (await a1.next()).message_id == "m1"
    assert (await a2.next()).message_id == "m1"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.next(), 0.05)
    hub.unsubscribe(a1)
    assert hub.connected("a") == 1
    assert hub.dispatch(_event("nobody", 2)) == 0


async def test_a_client_that_falls_behind_gets_what_was_queued_then_overflow() -> None:
    hub = Hub(queue_size=2)
    sub = hub.subscribe("a")
    assert [hub.dispatch(_event("a", n)) for n in range(4)] == [1, 1, 0, 0]
    assert [(await sub.next()).message_id for _ in range(2)] == ["m0", "m1"]
    with pytest.raises(SubscriptionOverflow):
        await sub.next()
