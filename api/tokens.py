"""JWT access tokens (PyJWT, HS256): issue, verify, revoke (revocations kept in Redis until expiry)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cachetools import TLRUCache
from redis.asyncio import Redis

from api.errors import DependencyUnavailable, unauthenticated
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
_REVOKED_PREFIX = "chat4all:revoked:"
# Pub/sub channel each revoked jti is published on: gateways end the token's live streams at once.
REVOCATIONS_CHANNEL = "chat4all:revocations"
MIN_SECRET_BYTES = 32


class MissingSecret(RuntimeError):
    """No usable JWT secret (none outside dev mode, or one under 32 bytes): the API must not start."""


@dataclass(frozen=True, kw_only=True)
class Claims:
    """What a verified access token says: its user, its id (jti) and when it expires."""

    user_id: str
    jti: str
    expires_at: int  # epoch seconds


def resolve_secret(settings: Settings) -> str:
    """The signing secret: CHAT4ALL_JWT_SECRET, or in dev mode one generated once and kept in the stack dir.

    Kept (mode 0600) so that tokens survive an API restart. A secret shorter than MIN_SECRET_BYTES
    is refused in dev mode too: a guessable secret lets anyone mint tokens for any user, and
    dev-mode APIs are reachable by other people as well.
    """
    if settings.jwt_secret is not None and settings.jwt_secret.get_secret_value():
        secret = settings.jwt_secret.get_secret_value()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise MissingSecret(
                f"CHAT4ALL_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes (HS256 needs 32): refusing to start;"
                " unset it in dev mode to have one generated"
            )
        return secret
    if not settings.dev_mode:
        raise MissingSecret(
            "CHAT4ALL_JWT_SECRET is not set and CHAT4ALL_DEV_MODE is false: refusing to start"
        )
    path = Path(settings.stack_dir) / "api-dev-jwt-secret"
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        if len(kept.encode()) < MIN_SECRET_BYTES:
            raise MissingSecret(
                f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes: delete it to have one generated"
            )
        return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    logger.warning(
        "dev mode: no CHAT4ALL_JWT_SECRET, generated one in %s (never do this in production)", path
    )
    return secret


class TokenService:
    """Issues and checks access tokens for one issuer and secret.

    ``cache_seconds`` (default 0: off): a token that passed every check is trusted again for that
    long without re-checking it. Verifying an HS256 signature costs about 25 us and the revocation
    lookup a Redis round trip; SendMessage at 2,000/s would pay both on every call. A cached token
    is still refused the moment it expires, and at once in this process when it is revoked here;
    a revocation made through another API process reaches this one within ``cache_seconds``.
    """

    def __init__(
        self,
        *,
        secret: str,
        issuer: str,
        ttl_seconds: int,
        redis: Redis | None,
        cache_seconds: float = 0.0,
        cache_size: int = 100_000,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._ttl = ttl_seconds
        self._redis = redis
        self._cache_seconds = cache_seconds
        # token -> its claims, until its revocation check is due again. Each entry lives between half
        # and all of cache_seconds: tokens first seen together (a client fleet starting up) do not
        # all fall due for their Redis lookup at the same moment.
        self._cache: TLRUCache[str, Claims] = TLRUCache(
            maxsize=cache_size,
            ttu=lambda _token, _claims, now: now + cache_seconds * random.uniform(0.5, 1.0),
        )
        # jti -> expiry (epoch s) of tokens revoked through this process: refused even if cached
        self._revoked_here: dict[str, int] = {}

    def issue(self, user_id: str) -> tuple[str, int]:
        """A signed token for ``user_id`` and its expiry (epoch seconds)."""
        now = int(time.time())
        exp = now + self._ttl
        claims = {"sub": user_id, "iss": self._issuer, "iat": now, "exp": exp, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), exp

    async def verify(self, token: str, *, timeout: float) -> Claims:
        """The token's claims; UNAUTHENTICATED if it is forged, expired, malformed or revoked."""
        claims = self._cache.get(token)
        if claims is not None:
            if time.time() >= claims.expires_at:
                del self._cache[token]
                raise unauthenticated("access token expired; log in again")
            if claims.jti in self._revoked_here:
                raise unauthenticated("access token was revoked; log in again")
            return claims
        # Not cached, or its revocation check is due: checked in full (an evicted token too).
        claims = self._decode(token)
        await self._check_not_revoked(claims, timeout)
        if self._cache_seconds > 0:
            self._cache[token] = claims
        return claims

    def _decode(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iss", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("access token expired; log in again") from None
        except jwt.InvalidTokenError:
            raise unauthenticated("access token is invalid") from None
        try:
            uuid.UUID(claims["sub"])
        except (ValueError, TypeError):
            raise unauthenticated("access token is invalid") from None
        return Claims(user_id=claims["sub"], jti=str(claims["jti"]), expires_at=int(claims["exp"]))

    async def _check_not_revoked(self, claims: Claims, timeout: float) -> None:
        if claims.jti in self._revoked_here:
            raise unauthenticated("access token was revoked; log in again")
        assert self._redis is not None, "a TokenService without Redis can only issue tokens"
        try:
            async with asyncio.timeout(timeout):
                revoked = await self._redis.exists(_REVOKED_PREFIX + claims.jti)
        except TimeoutError:
            raise DependencyUnavailable("Redis is unavailable (token revocation list); try again") from None
        if revoked:
            raise unauthenticated("access token was revoked; log in again")

    async def revoke(self, claims: Claims) -> None:
        """Refuse this token from now until it would have expired anyway."""
        assert self._redis is not None, "a TokenService without Redis can only issue tokens"
        now = int(time.time())
        ttl = max(1, claims.expires_at - now + 1)
        await self._redis.set(_REVOKED_PREFIX + claims.jti, "1", ex=ttl)
        try:
            await self._redis.publish(REVOCATIONS_CHANNEL, claims.jti)
        except Exception as exc:  # the revocation holds; live streams then end at their next re-check
            logger.warning(
                "revocation notice not published (%s); live streams end at their next re-check",
                type(exc).__name__,
            )
        if self._cache_seconds > 0:
            # Expired entries go first: the set stays as small as the tokens revoked in one TTL.
            self._revoked_here = {j: exp for j, exp in self._revoked_here.items() if exp > now}
            self._revoked_here[claims.jti] = claims.expires_at
