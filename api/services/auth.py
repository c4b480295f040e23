"""AuthService: Register, Login, RevokeToken."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid

import grpc

from api.auth_interceptor import current_claims
from api.convert import ts_from_ms
from api.deps import ApiDeps
from api.errors import ApiError, invalid, unauthenticated
from api.login_throttle import Outcome
from api.registration import ServiceRegistration, full_name
from api.services.users import validate_channels
from chat4all.clock import utc_now
from chat4all.v1 import auth_pb2, auth_pb2_grpc

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9._-]{3,32}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 256


def validate_username(username: str) -> str:
    """The username if it is 3 to 32 of ``a-z 0-9 . _ -``; INVALID_ARGUMENT otherwise."""
    if not USERNAME_RE.match(username):
        raise invalid("username must be 3 to 32 characters: lowercase letters, digits, '.', '_' or '-'")
    return username


def validate_password(password: str) -> str:
    """The password if its length is within MIN_PASSWORD..MAX_PASSWORD; INVALID_ARGUMENT otherwise."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """Accounts and tokens; passwords are hashed with argon2 on a pool of its own, never logged.

    Login and Register are limited per client address, Login per username too (api/auth_limits.py).
    """

    def __init__(self, *, deps: ApiDeps) -> None:
        self._deps = deps

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RegisterResponse:
        """Register: create an account and answer its user id; ALREADY_EXISTS if the username is taken."""
        username = validate_username(request.username)
        validate_password(request.password)
        channels = validate_channels(dict(request.channels))
        # After the cheap shape checks (they cost nothing to refuse), before the hash.
        address = await self._deps.auth_limits.check_address(context)
        users = self._deps.users
        user_id = uuid.uuid4()
        password_hash = await self._deps.passwords.hash(request.password, owner=address)
        # The user row first, then the username claim: if the claim is lost (taken, or an outage),
        # the row is an orphan nobody can log into, never a username without an account.
        now = utc_now()
        await users.insert(
            user_id=user_id,
            username=username,
            password_hash=password_hash,
            channels=channels or None,
            created_at=now,
            context=context,
        )
        if not await users.claim_username(username=username, user_id=user_id, context=context):
            await users.delete(user_id=user_id, context=context)
            raise ApiError(grpc.StatusCode.ALREADY_EXISTS, f"username {username!r} is already taken")
        logger.info("registered user %s", username, extra={"user_id": str(user_id)})
        return auth_pb2.RegisterResponse(user_id=str(user_id))

    async def Login(
        self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.LoginResponse:
        """Login: exchange username and password for an access token; UNAUTHENTICATED if either is wrong."""
        if not request.username or not request.password:
            raise invalid("username and password are required")
        limits = self._deps.auth_limits
        address = await limits.check_address(context)
        attempt = await limits.begin_login(request.username, context)
        try:
            user_id = await self._check_password(request, context, owner=address)
        except BaseException:
            # An outage or a cancelled call: the slot is freed, nothing is counted.
            with contextlib.suppress(Exception):
                await limits.finish_login(attempt, Outcome.OTHER)
            raise
        await limits.finish_login(attempt, Outcome.OK if user_id is not None else Outcome.FAILED)
        if user_id is None:
            raise unauthenticated("wrong username or password")
        token, exp = self._deps.tokens.issue(user_id)
        return auth_pb2.LoginResponse(access_token=token, expires_at=ts_from_ms(exp * 1000), user_id=user_id)

    async def _check_password(
        self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext, *, owner: str
    ) -> str | None:
        """The user id if the username exists and the password matches, else None."""
        users = self._deps.users
        user_id = await users.user_id_of(username=request.username, context=context)
        user = None
        if user_id is not None:
            user = await users.get(user_id=user_id, context=context)
        # Always verify (against a dummy hash if the user is unknown): same cost either way.
        ok = await self._deps.passwords.verify(
            user.password_hash if user else None, request.password, owner=owner
        )
        return str(user.user_id) if ok and user is not None else None

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeTokenResponse:
        """RevokeToken: the caller's token stops working at once (on every API process and live stream)."""
        await self._deps.tokens.revoke(current_claims(context))
        return auth_pb2.RevokeTokenResponse()


def registration(deps: ApiDeps) -> ServiceRegistration:
    """AuthService, for the API server's list of services (cli/api.py)."""
    return ServiceRegistration(
        add_fn=auth_pb2_grpc.add_AuthServiceServicer_to_server,
        servicer=AuthServicer(deps=deps),
        name=full_name(auth_pb2, "AuthService"),
    )
