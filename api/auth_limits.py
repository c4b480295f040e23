"""Abuse limits of Login and Register: attempts per client address, failed logins per username.

Both are checked before a password is hashed, both live in Redis (every API process shares
them), and both answer RESOURCE_EXHAUSTED with a ``retry-after`` trailer (decimal seconds).
"""

from __future__ import annotations

import logging

import grpc
from redis.asyncio import Redis

from api import metrics
from api.client_address import client_address
from api.deadline import budget
from api.errors import ApiError
from api.login_throttle import Attempt, LoginThrottle, Outcome
from api.ratelimit import RateLimiter
from chat4all.settings import Settings

logger = logging.getLogger(__name__)

_MAX_RETRY_SECONDS = 3600.0


def _exhausted(message: str, seconds: float) -> ApiError:
    wait = f"{min(_MAX_RETRY_SECONDS, max(0.001, seconds)):.3f}"
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, f"{message}; retry in {wait} s", trailers=(("retry-after", wait),)
    )


class AuthLimits:
    """The address bucket (``auth_address_*``) and the username throttle (``login_*``) of one API process."""

    def __init__(self, *, redis: Redis, settings: Settings) -> None:
        self._timeout = settings.api_storage_timeout_seconds
        self._backoff = settings.login_backoff_seconds
        self._trusted_header = settings.trusted_proxy_header
        self._threshold = settings.login_failure_threshold
        self._addresses = (
            RateLimiter(
                redis=redis,
                rate=settings.auth_address_rate_per_second,
                burst=settings.auth_address_burst,
                lease_max=1,
                prefix="chat4all:authaddr:",
            )
            if settings.auth_address_rate_per_second > 0 and settings.auth_address_burst > 0
            else None
        )
        self._logins = (
            LoginThrottle(
                redis=redis,
                threshold=settings.login_failure_threshold,
                backoff_seconds=settings.login_backoff_seconds,
                backoff_max_seconds=settings.login_backoff_max_seconds,
                window_seconds=settings.login_failure_window_seconds,
                timeout=self._timeout,
            )
            if settings.login_failure_threshold > 0
            else None
        )

    def address(self, context: grpc.aio.ServicerContext) -> str:
        """The caller's address key (the peer's, or the trusted proxy header's)."""
        return client_address(context, trusted_header=self._trusted_header)

    async def check_address(self, context: grpc.aio.ServicerContext) -> str:
        """Take one attempt from the caller's address bucket, or refuse the call; the address key."""
        address = self.address(context)
        if self._addresses is None:
            return address
        decision = await self._addresses.acquire(address, timeout=budget(context, self._timeout))
        if not decision.allowed:
            metrics.AUTH_REFUSED.labels("address").inc()
            raise _exhausted(
                "too many login and register attempts from this address", decision.retry_after_seconds
            )
        return address

    async def begin_login(self, username: str, context: grpc.aio.ServicerContext) -> Attempt | None:
        """A slot for one login attempt at ``username`` (None when the throttle is off), or refuse the call."""
        if self._logins is None:
            return None
        attempt = await self._logins.begin(username, timeout=budget(context, self._timeout))
        if not attempt.allowed:
            metrics.AUTH_REFUSED.labels("username").inc()
            raise _exhausted("too many failed logins for this username", attempt.retry_after_seconds)
        return attempt

    async def finish_login(self, attempt: Attempt | None, outcome: Outcome) -> None:
        """Count the attempt's outcome (a success forgets the username's failures)."""
        if attempt is None or self._logins is None:
            return
        wait = await self._logins.finish(attempt, outcome)
        if 0 < wait <= self._backoff:  # the failure that reached the threshold, not every later one
            logger.info(
                "login: a username reached %s failed logins; its attempts now wait, doubling", self._threshold
            )
