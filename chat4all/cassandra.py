"""Cassandra session factory and an asyncio bridge for the driver's futures."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cassandra.cluster import Cluster, ResponseFuture, Session
from cassandra.policies import DCAwareRoundRobinPolicy

from chat4all.settings import Settings

logger = logging.getLogger(__name__)


def connect(settings: Settings, *, keyspace: str | None = None, connect_timeout: float = 10.0) -> Session:
    """A session on the configured cluster, in the Chat4All keyspace unless ``keyspace`` says otherwise.

    Blocking: call it from a thread (``asyncio.to_thread``) inside an event loop.
    """
    cluster = Cluster(
        contact_points=[settings.cassandra_host],
        port=settings.cassandra_port,
        protocol_version=5,
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="datacenter1"),
        connect_timeout=connect_timeout,
    )
    session = cluster.connect(keyspace if keyspace is not None else settings.cassandra_keyspace)
    return session


def aexecute(session: Session, query: Any, params: Any = None, *, timeout: float = 10.0) -> asyncio.Future:
    """Run a statement without blocking the event loop; the result is the driver's ResultSet."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future = loop.create_future()
    response: ResponseFuture = session.execute_async(query, params, timeout=timeout)

    def on_ok(_rows: Any) -> None:
        # The callback runs on the driver's thread: hand the whole ResultSet to the loop.
        loop.call_soon_threadsafe(_settle, result, response.result(), None)

    def on_err(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_settle, result, None, exc)

    response.add_callbacks(on_ok, on_err)
    return result


def _settle(fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
