"""One connected client's life, the same for every transport: session, subscription, heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gateway import metrics
from gateway.events import LiveEvent
from gateway.hub import Hub
from gateway.sessions import SessionRegistry

logger = logging.getLogger(__name__)


async def run_client(
    *,
    user_id: str,
    transport: str,
    hub: Hub,
    sessions: SessionRegistry,
    heartbeat_seconds: float,
    send: Callable[[LiveEvent], Awaitable[None]],
) -> None:
    """Deliver the user's live events through ``send`` until it fails or the task is cancelled.

    Raises SubscriptionOverflow when the client fell too far behind.
    """
    session_id = await sessions.open(user_id=user_id, transport=transport)
    sub = hub.subscribe(user_id)
    metrics.CONNECTIONS.labels(transport).inc()
    heartbeat = asyncio.create_task(_heartbeat(sessions, user_id, session_id, heartbeat_seconds))
    reason = "closed"
    try:
        while True:
            await send(await sub.next())
    except asyncio.CancelledError:
        reason = "client_gone"
        raise
    except Exception as exc:
        reason = type(exc).__name__
        raise
    finally:
        heartbeat.cancel()
        hub.unsubscribe(sub)
        metrics.CONNECTIONS.labels(transport).dec()
        metrics.DISCONNECTS.labels(transport, reason).inc()
        with contextlib.suppress(Exception):  # Redis may be down; the session expires by itself
            await sessions.close(user_id=user_id, session_id=session_id)


async def _heartbeat(sessions: SessionRegistry, user_id: str, session_id: str, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await sessions.heartbeat(user_id=user_id, session_id=session_id)
        except Exception as exc:
            logger.warning("session heartbeat failed: %s", exc, extra={"user_id": user_id})
