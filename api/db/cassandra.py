"""The API's Cassandra connection: lazily (re)connected, preparing its repositories' statements, deadline-bound calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import grpc
from cassandra.cluster import ResultSet, Session
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from api.deadline import budget
from api.errors import DependencyUnavailable
from chat4all.cassandra import aexecute, cluster
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

# Consistency levels are not set per statement: the cluster's execution profiles carry the
# configured ones (chat4all/cassandra.py; docs/security.md, "Consistency").


class Statement:
    """One CQL statement of a repository (``{ks}`` stands for the keyspace), prepared when the session connects."""

    __slots__ = ("cql", "prepared")

    def __init__(self, cql: str) -> None:
        self.cql = cql
        self.prepared: PreparedStatement | None = None


class Cassandra:
    """Cassandra for the API, connected on first use and again after a failed attempt.

    So the API starts (and answers UNAVAILABLE) while Cassandra is down, and recovers by itself.
    """

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._session: Session | None = None
        self._statements: list[Statement] = []
        self._connecting: asyncio.Task | None = None
        self._ping = self.statement("SELECT release_version FROM system.local")

    @property
    def connected(self) -> bool:
        """True once a session is open."""
        return self._session is not None

    def statement(self, cql: str) -> Statement:
        """A statement for a repository, prepared once per session, with all the others, when it connects."""
        if self._session is not None or self._connecting is not None:
            raise RuntimeError("repositories register their statements before the first connection")
        statement = Statement(cql)
        self._statements.append(statement)
        return statement

    def _connect_blocking(self) -> tuple[Session, list[PreparedStatement]]:
        # The session keeps the keyspace (other servicers prepare unqualified statements on it);
        # ours name it anyway.
        driver_cluster = cluster(self._settings, connect_timeout=self._settings.api_storage_timeout_seconds)
        ks = self._settings.cassandra_keyspace
        try:
            session = driver_cluster.connect(ks)
            prepared = [session.prepare(statement.cql.replace("{ks}", ks)) for statement in self._statements]
        except Exception:
            driver_cluster.shutdown()  # a failed attempt must not leave the driver's threads behind
            raise
        return session, prepared

    async def _connect(self) -> None:
        session, prepared = await asyncio.to_thread(self._connect_blocking)
        for statement, ready in zip(self._statements, prepared, strict=True):
            statement.prepared = ready
        self._session = session
        logger.info(
            "connected to Cassandra at %s:%s", self._settings.cassandra_host, self._settings.cassandra_port
        )

    async def session(self, timeout: float) -> Session:
        """The session, connecting if needed; DependencyUnavailable if that takes longer than ``timeout``."""
        if self._session is not None:
            return self._session
        task = self._connecting
        if task is None or (task.done() and task.exception() is not None):
            # A connection attempt outlives the call that started it (shielded), so a slow
            # first connect is not restarted by every impatient caller.
            task = self._connecting = asyncio.ensure_future(self._connect())
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            raise DependencyUnavailable("Cassandra is unavailable (no connection yet); try again") from None
        except Exception as exc:  # the driver's NoHostAvailable and friends
            logger.warning("Cassandra connection failed: %s", exc)
            raise DependencyUnavailable("Cassandra is unavailable; try again") from None
        assert self._session is not None
        return self._session

    async def run(
        self, statement: Statement, params: Any = None, *, context: grpc.aio.ServicerContext | None = None
    ) -> ResultSet:
        """Run a repository's statement within the call's deadline."""
        timeout = budget(context, self._settings.api_storage_timeout_seconds)
        session = self._session or await self.session(timeout)
        async with asyncio.timeout(timeout + 0.05):
            return await aexecute(session, statement.prepared, params, timeout=timeout)

    async def run_batch(
        self,
        statements: Iterable[tuple[Statement, Any]],
        *,
        batch_type: BatchType,
        context: grpc.aio.ServicerContext | None = None,
    ) -> ResultSet:
        """Run (statement, params) pairs as one batch within the call's deadline."""
        timeout = budget(context, self._settings.api_storage_timeout_seconds)
        session = await self.session(timeout)
        batch = BatchStatement(batch_type=batch_type)
        for statement, params in statements:
            batch.add(statement.prepared, params)
        return await asyncio.wait_for(aexecute(session, batch, timeout=timeout), timeout + 0.05)

    async def ping(self, *, context: grpc.aio.ServicerContext | None = None) -> None:
        """One cheap query (the health check); raises what the driver raises."""
        await self.run(self._ping, context=context)

    async def close(self) -> None:
        """Shut the cluster connection down, if there is one."""
        if self._session is not None:
            await asyncio.to_thread(self._session.cluster.shutdown)
            self._session = None
