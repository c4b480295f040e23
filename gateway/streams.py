"""What every live stream shares whatever its transport: the caps, the client loop, the token guard."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from api.tokens import Claims, TokenService
from chat4all.wire import Notification
from gateway.client_loop import run_client
from gateway.hub import Hub
from gateway.limits import StreamLease, StreamLimits
from gateway.revocations import RevocationNotices
from gateway.sessions import SessionRegistry
from gateway.token_guard import guard_token


class LiveStreams:
    """Admits a stream (``admit``, before it takes anything) and runs it (``run``) until it ends."""

    def __init__(
        self,
        *,
        hub: Hub,
        sessions: SessionRegistry,
        limits: StreamLimits,
        tokens: TokenService,
        notices: RevocationNotices,
        on_written: Callable[[Notification], None],
        heartbeat_seconds: float,
        token_timeout: float,
    ) -> None:
        self.hub = hub
        self.sessions = sessions
        self.limits = limits
        self.tokens = tokens
        self.notices = notices
        self._on_written = on_written
        self._heartbeat = heartbeat_seconds
        self._token_timeout = token_timeout

    def admit(self, user_id: str) -> StreamLease:
        """A slot for one more stream; raises TooManyStreams over a cap."""
        return self.limits.acquire(user_id)

    async def run(
        self,
        *,
        token: str,
        claims: Claims,
        transport: str,
        send: Callable[[Notification], Awaitable[None]],
    ) -> None:
        """Deliver until the client goes, falls behind (SubscriptionOverflow) or its token ends (TokenEnded).

        The caller holds the stream's lease and releases it when this returns.
        """
        await run_client(
            user_id=claims.user_id,
            transport=transport,
            hub=self.hub,
            sessions=self.sessions,
            heartbeat_seconds=self._heartbeat,
            send=send,
            on_written=self._on_written,
            guard=functools.partial(
                guard_token,
                token=token,
                claims=claims,
                tokens=self.tokens,
                notices=self.notices,
                check_every=self._heartbeat,
                timeout=self._token_timeout,
            ),
        )
