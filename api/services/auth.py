"""AuthService: Register, Login, RevokeToken."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid

import grpc

from api.auth import current_claims
from api.convert import ts_from_ms
from api.deps import ApiDeps
from api.errors import ApiError, invalid, unauthenticated
from api.passwords import hash_password, verify_password
from api.services.users import validate_channels
from chat4all.v1 import auth_pb2, auth_pb2_grpc

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9._-]{3,32}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 256


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise invalid("username must be 3 to 32 characters: lowercase letters, digits, '.', '_' or '-'")
    return username


def validate_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """Accounts and tokens. Passwords are hashed with argon2 in a thread, never logged."""

    def __init__(self, *, deps: ApiDeps) -> None:
        self._deps = deps

    async def Register(self, request: auth_pb2.RegisterRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RegisterResponse:
        username = validate_username(request.username)
        validate_password(request.password)
        channels = validate_channels(dict(request.channels))
        store = self._deps.store
        user_id = uuid.uuid4()
        password_hash = await hash_password(request.password)
        # The user row first, then the username claim: if the claim is lost (taken, or an outage),
        # the row is an orphan nobody can log into, never a username without an account.
        now = dt.datetime.now(dt.UTC)
        await store.execute("insert_user", (user_id, username, password_hash, channels or None, now), context=context)
        claim = (await store.execute("claim_username", (username, user_id), context=context)).one()
        if not claim.applied:
            await store.execute("delete_user", (user_id,), context=context)
            raise ApiError(grpc.StatusCode.ALREADY_EXISTS, f"username {username!r} is already taken")
        logger.info("registered user %s", username, extra={"user_id": str(user_id)})
        return auth_pb2.RegisterResponse(user_id=str(user_id))

    async def Login(self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext) -> auth_pb2.LoginResponse:
        if not request.username or not request.password:
            raise invalid("username and password are required")
        store = self._deps.store
        claim = (await store.execute("user_by_username", (request.username,), context=context)).one()
        row = None
        if claim is not None:
            row = (await store.execute("get_user", (claim.user_id,), context=context)).one()
        # Always verify (against a dummy hash if the user is unknown): same cost either way.
        ok = await verify_password(row.password_hash if row else None, request.password)
        if not ok or row is None:
            raise unauthenticated("wrong username or password")
        token, exp = self._deps.tokens.issue(str(row.user_id))
        return auth_pb2.LoginResponse(access_token=token, expires_at=ts_from_ms(exp * 1000), user_id=str(row.user_id))

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeTokenResponse:
        await self._deps.tokens.revoke(current_claims(context))
        return auth_pb2.RevokeTokenResponse()
