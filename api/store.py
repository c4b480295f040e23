"""The API's Cassandra access: a lazily (re)connected session, prepared statements, deadline-bound calls."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from cassandra.cluster import ResultSet, Session
from cassandra.query import PreparedStatement

from api.deadline import budget
from api.errors import DependencyUnavailable
from chat4all.cassandra import aexecute, cluster
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

# The statements of the API's tables, prepared once per session; names are what handlers use.
# The files package's tables have repositories of their own (api.files.tables).
STATEMENTS: dict[str, str] = {
    "ping": "SELECT release_version FROM system.local",
    # users
    "insert_user": "INSERT INTO {ks}.users (user_id, username, password_hash, channels, created_at) VALUES (?, ?, ?, ?, ?)",
    "delete_user": "DELETE FROM {ks}.users WHERE user_id = ?",
    "claim_username": "INSERT INTO {ks}.users_by_username (username, user_id) VALUES (?, ?) IF NOT EXISTS",
    "user_by_username": "SELECT user_id FROM {ks}.users_by_username WHERE username = ?",
    "get_user": "SELECT user_id, username, password_hash, channels FROM {ks}.users WHERE user_id = ?",
    "user_exists": "SELECT user_id FROM {ks}.users WHERE user_id = ?",
    "link_channel": "UPDATE {ks}.users SET channels[?] = ? WHERE user_id = ?",
    "unlink_channel": "DELETE channels[?] FROM {ks}.users WHERE user_id = ?",
    "get_channels": "SELECT channels FROM {ks}.users WHERE user_id = ?",
    # conversations
    "insert_conversation": (
        "INSERT INTO {ks}.conversations (conversation_id, type, title, participant_ids, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    ),
    "insert_conversation_by_user": "INSERT INTO {ks}.conversations_by_user (user_id, conversation_id) VALUES (?, ?)",
    "get_conversation": (
        "SELECT conversation_id, type, title, participant_ids, created_by, created_at"
        " FROM {ks}.conversations WHERE conversation_id = ?"
    ),
    "claim_private": (
        "INSERT INTO {ks}.private_conversations (user_low, user_high, conversation_id) VALUES (?, ?, ?) IF NOT EXISTS"
    ),
    "list_conversations_first": "SELECT conversation_id FROM {ks}.conversations_by_user WHERE user_id = ? LIMIT ?",
    "list_conversations_after": (
        "SELECT conversation_id FROM {ks}.conversations_by_user WHERE user_id = ? AND conversation_id > ? LIMIT ?"
    ),
    # messages
    # client_message_id claims (api/idempotency.py; Redis in front spares it the duplicates)
    "claim_client_message": (
        "INSERT INTO {ks}.client_messages (sender_id, client_message_id, message_id, conversation_id, ts, fingerprint)"
        " VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
    ),
    "release_client_message": (
        "DELETE FROM {ks}.client_messages WHERE sender_id = ? AND client_message_id = ? IF message_id = ?"
    ),
    "message_by_id": "SELECT message_id, conversation_id, ts, sender_id FROM {ks}.messages_by_id WHERE message_id = ?",
    "messages_first": (
        "SELECT conversation_id, ts, message_id, sender_id, content, file_id, status, delivered_at, read_at, receipts"
        " FROM {ks}.messages WHERE conversation_id = ? LIMIT ?"
    ),
    "messages_after": (
        "SELECT conversation_id, ts, message_id, sender_id, content, file_id, status, delivered_at, read_at, receipts"
        " FROM {ks}.messages WHERE conversation_id = ? AND (ts, message_id) > (?, ?) LIMIT ?"
    ),
}

# Consistency levels are not set per statement: the cluster's execution profiles carry the
# configured ones (chat4all/cassandra.py; docs/security.md, "Consistency").


class Store:
    """Cassandra for the API. Connects on first use and again after a failed attempt, so the API
    starts (and answers UNAVAILABLE) while Cassandra is down, and recovers by itself."""

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._connecting: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self._session is not None

    def _connect_blocking(self) -> tuple[Session, dict[str, PreparedStatement]]:
        # The session keeps the keyspace (other servicers prepare unqualified statements on it);
        # ours name it anyway.
        driver_cluster = cluster(self._settings, connect_timeout=self._settings.api_storage_timeout_seconds)
        ks = self._settings.cassandra_keyspace
        try:
            session = driver_cluster.connect(ks)
            prepared = {name: session.prepare(cql.replace("{ks}", ks)) for name, cql in STATEMENTS.items()}
        except Exception:
            driver_cluster.shutdown()  # a failed attempt must not leave the driver's threads behind
            raise
        return session, prepared

    async def _connect(self) -> None:
        session, prepared = await asyncio.to_thread(self._connect_blocking)
        self._session, self._prepared = session, prepared
        logger.info("connected to Cassandra at %s:%s", self._settings.cassandra_host, self._settings.cassandra_port)

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

    async def execute(
        self, name: str, params: Any = None, *, context: grpc.aio.ServicerContext | None = None
    ) -> ResultSet:
        """Run a prepared statement within the call's deadline."""
        timeout = budget(context, self._settings.api_storage_timeout_seconds)
        session = self._session or await self.session(timeout)
        async with asyncio.timeout(timeout + 0.05):
            return await aexecute(session, self._prepared[name], params, timeout=timeout)

    async def execute_statement(self, statement: Any, *, context: grpc.aio.ServicerContext | None = None) -> ResultSet:
        """Run a ready statement (e.g. a BatchStatement of prepared statements) within the deadline."""
        timeout = budget(context, self._settings.api_storage_timeout_seconds)
        session = await self.session(timeout)
        return await asyncio.wait_for(aexecute(session, statement, timeout=timeout), timeout + 0.05)

    def prepared(self, name: str) -> PreparedStatement:
        return self._prepared[name]

    async def close(self) -> None:
        if self._session is not None:
            await asyncio.to_thread(self._session.cluster.shutdown)
            self._session = None
