"""The `users` and `users_by_username` tables: accounts, username claims and linked channels."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import grpc

from api.db.cassandra import Cassandra

Context = grpc.aio.ServicerContext | None


@dataclass(frozen=True, kw_only=True)
class User:
    """A users row as the API reads it."""

    user_id: uuid.UUID
    username: str
    password_hash: str
    channels: dict[str, str]


class UserRepository:
    """Accounts by id and by username. Each call runs within the gRPC call's deadline (``context``)."""

    def __init__(self, *, cassandra: Cassandra) -> None:
        self._cassandra = cassandra
        statement = cassandra.statement
        self._insert = statement(
            "INSERT INTO {ks}.users (user_id, username, password_hash, channels, created_at) VALUES (?, ?, ?, ?, ?)"
        )
        self._delete = statement("DELETE FROM {ks}.users WHERE user_id = ?")
        self._claim_username = statement(
            "INSERT INTO {ks}.users_by_username (username, user_id) VALUES (?, ?) IF NOT EXISTS"
        )
        self._by_username = statement("SELECT user_id FROM {ks}.users_by_username WHERE username = ?")
        self._get = statement(
            "SELECT user_id, username, password_hash, channels FROM {ks}.users WHERE user_id = ?"
        )
        self._exists = statement("SELECT user_id FROM {ks}.users WHERE user_id = ?")
        self._link = statement("UPDATE {ks}.users SET channels[?] = ? WHERE user_id = ?")
        self._unlink = statement("DELETE channels[?] FROM {ks}.users WHERE user_id = ?")
        self._channels = statement("SELECT channels FROM {ks}.users WHERE user_id = ?")

    async def insert(
        self,
        *,
        user_id: uuid.UUID,
        username: str,
        password_hash: str,
        channels: dict[str, str] | None,
        created_at: dt.datetime,
        context: Context = None,
    ) -> None:
        """Write the user's row (before its username is claimed: see AuthServicer.Register)."""
        await self._cassandra.run(
            self._insert, (user_id, username, password_hash, channels, created_at), context=context
        )

    async def delete(self, *, user_id: uuid.UUID, context: Context = None) -> None:
        """Delete the user's row."""
        await self._cassandra.run(self._delete, (user_id,), context=context)

    async def claim_username(self, *, username: str, user_id: uuid.UUID, context: Context = None) -> bool:
        """Claim ``username`` for ``user_id`` (a lightweight transaction); False if it is taken."""
        row = (await self._cassandra.run(self._claim_username, (username, user_id), context=context)).one()
        return bool(row.applied)

    async def user_id_of(self, *, username: str, context: Context = None) -> uuid.UUID | None:
        """The id that holds ``username``, or None."""
        row = (await self._cassandra.run(self._by_username, (username,), context=context)).one()
        return None if row is None else row.user_id

    async def get(self, *, user_id: uuid.UUID, context: Context = None) -> User | None:
        """The user, or None."""
        row = (await self._cassandra.run(self._get, (user_id,), context=context)).one()
        if row is None:
            return None
        return User(
            user_id=row.user_id,
            username=row.username,
            password_hash=row.password_hash,
            channels=dict(row.channels or {}),
        )

    async def exists(self, *, user_id: uuid.UUID, context: Context = None) -> bool:
        """Whether the user has a row."""
        return (await self._cassandra.run(self._exists, (user_id,), context=context)).one() is not None

    async def link_channel(
        self, *, user_id: uuid.UUID, channel: str, handle: str, context: Context = None
    ) -> None:
        """Set the user's handle on ``channel``."""
        await self._cassandra.run(self._link, (channel, handle, user_id), context=context)

    async def unlink_channel(self, *, user_id: uuid.UUID, channel: str, context: Context = None) -> None:
        """Remove the user's handle on ``channel``."""
        await self._cassandra.run(self._unlink, (channel, user_id), context=context)

    async def channels(self, *, user_id: uuid.UUID, context: Context = None) -> dict[str, str]:
        """The user's linked channels (channel -> handle); empty if the user has none or no row."""
        row = (await self._cassandra.run(self._channels, (user_id,), context=context)).one()
        return dict(row.channels or {}) if row else {}
