"""Cassandra session factory and an asyncio bridge for the driver's futures."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, ResponseFuture, Session
from cassandra.policies import DCAwareRoundRobinPolicy

from chat4all.settings import Settings

logger = logging.getLogger(__name__)


def cluster(settings: Settings, *, connect_timeout: float = 10.0) -> Cluster:
    """A driver Cluster for the configured contact point (not yet connected)."""
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc))
    return Cluster(
        contact_points=[settings.cassandra_host],
        port=settings.cassandra_port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=connect_timeout,
    )


def connect(settings: Settings, *, connect_timeout: float = 10.0) -> Session:
    """A session in the Chat4All keyspace. Blocking: call it through ``asyncio.to_thread`` in a loop."""
    return cluster(settings, connect_timeout=connect_timeout).connect(settings.cassandra_keyspace)


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
