"""Ends a live stream with the token it was opened with: at its expiry, and on its revocation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import NoReturn

from api.errors import ApiError
from api.tokens import Claims, TokenService
from gateway.revocations import RevocationNotices

logger = logging.getLogger(__name__)

REVOKED = "access token was revoked: log in again and resubscribe"
EXPIRED = "access token expired: log in again and resubscribe"


class TokenEnded(Exception):
    """The stream's token expired or was revoked; ``reason`` tells the client what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def guard_token(
    *,
    token: str,
    claims: Claims,
    tokens: TokenService,
    notices: RevocationNotices,
    check_every: float,
    timeout: float,
) -> NoReturn:
    """Raise TokenEnded at the token's exp, at a revocation notice, or when a periodic re-check refuses it.

    The re-check, every ``check_every`` seconds, catches a notice this gateway missed. A re-check that
    cannot reach Redis keeps the stream: an outage must not drop every client at once, and the
    expiry still applies.
    """
    notice = notices.watch(claims.jti)
    try:
        while True:
            left = claims.expires_at - time.time()
            if left <= 0:
                raise TokenEnded(EXPIRED)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(check_every, left)):
                    await notice.wait()
            if notice.is_set():
                raise TokenEnded(REVOKED)
            if time.time() >= claims.expires_at:
                raise TokenEnded(EXPIRED)
            try:
                await tokens.verify(token, timeout=timeout)
            except ApiError:
                raise TokenEnded(EXPIRED if time.time() >= claims.expires_at else REVOKED) from None
            except Exception as exc:
                logger.warning(
                    "live stream: token re-check failed (%s); stream kept",
                    type(exc).__name__,
                    extra={"user_id": claims.user_id},
                )
    finally:
        notices.unwatch(claims.jti, notice)
