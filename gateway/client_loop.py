"""One connected client's life, the same for every transport: session, subscription, heartbeat, token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

from chat4all.wire import Notification
from gateway import metrics
from gateway.hub import Hub, Subscription
from gateway.sessions import SessionRegistry

logger = logging.getLogger(__name__)


async def run_client(
    *,
    user_id: str,
    transport: str,
    hub: Hub,
    sessions: SessionRegistry,
    heartbeat_seconds: float,
    send: Callable[[Notification], Awaitable[None]],
    on_written: Callable[[Notification], None],
    guard: Callable[[], Awaitable[NoReturn]],
) -> None:
    """Deliver the user's live events via ``send`` until it fails, ``guard`` raises or the task is cancelled.

    ``guard`` raises when the token ended. ``send`` returns once the event is written to the
    client's transport; ``on_written`` is then told (the native DELIVERED receipt).

    Raises SubscriptionOverflow when the client fell too far behind, and whatever ``guard`` raises.
    """
    session_id = await sessions.open(user_id=user_id, transport=transport)
    sub = hub.subscribe(user_id)
    metrics.CONNECTIONS.labels(transport).inc()
    heartbeat = asyncio.create_task(_heartbeat(sessions, user_id, session_id, heartbeat_seconds))
    deliver = asyncio.create_task(_deliver(sub, send, on_written))
    watch = asyncio.create_task(guard())
    reason = "closed"
    try:
        done, _ = await asyncio.wait({deliver, watch}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # raises why the stream ended
    except asyncio.CancelledError:
        reason = "client_gone"
        raise
    except Exception as exc:
        reason = type(exc).__name__
        raise
    finally:
        for task in (heartbeat, deliver, watch):
            task.cancel()
        await asyncio.gather(heartbeat, deliver, watch, return_exceptions=True)
        hub.unsubscribe(sub)
        metrics.CONNECTIONS.labels(transport).dec()
        metrics.DISCONNECTS.labels(transport, reason).inc()
        with contextlib.suppress(Exception):  # Redis may be down; the session expires by itself
            await sessions.close(user_id=user_id, session_id=session_id)


async def _deliver(
    sub: Subscription,
    send: Callable[[Notification], Awaitable[None]],
    on_written: Callable[[Notification], None],
) -> None:
    while True:
        event = await sub.next()
        await send(event)
        on_written(event)


async def _heartbeat(sessions: SessionRegistry, user_id: str, session_id: str, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await sessions.heartbeat(user_id=user_id, session_id=session_id)
        except Exception as exc:
            logger.warning("session heartbeat failed: %s", exc, extra={"user_id": user_id})
