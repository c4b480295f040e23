"""WebSocket face of the gateway: ws://host:CHAT4ALL_WEBSOCKET_PORT/v1/events, one JSON event a frame.

Authentication: `Authorization: Bearer <jwt>` header or, for browsers that cannot set headers,
`?access_token=<jwt>`. A refused handshake answers HTTP 401 with the reason. Once open, the
stream is closed with a code the client can act on:
- 1013 (try again later): over a live-stream cap (gateway/limits.py), before it takes anything;
- 1008: the client fell too far behind; reconnect and catch up with GetMessages;
- 4401: its token expired or was revoked; log in again and reconnect.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from ssl import SSLContext
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from api.errors import ApiError
from api.tokens import Claims, TokenService
from chat4all.wire import Notification
from gateway.hub import SubscriptionOverflow
from gateway.limits import TooManyStreams
from gateway.streams import LiveStreams
from gateway.token_guard import TokenEnded

logger = logging.getLogger(__name__)

PATH = "/v1/events"
CLOSE_TRY_LATER = 1013
CLOSE_TOO_SLOW = 1008
CLOSE_TOKEN_ENDED = 4401
# Set on the connection by the handshake: (token, claims). It lives and dies with the connection,
# so a handshake that fails after authentication (bad upgrade headers, server shutting down,
# client gone) leaves nothing behind; the handler, which always ends, takes every other resource.
_AUTH_ATTR = "chat4all_auth"


class WebSocketGateway:
    """The gateway's WebSocket server: authenticates the handshake, then streams the user's live events."""

    def __init__(self, *, streams: LiveStreams, tokens: TokenService, auth_timeout: float) -> None:
        self._streams = streams
        self._tokens = tokens
        self._auth_timeout = auth_timeout
        self._server: Server | None = None

    async def start(self, *, host: str, port: int, ssl: SSLContext | None = None) -> int:
        """Start serving on ``host``:``port`` (TLS with ``ssl``); returns the port bound (for port 0)."""
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._authenticate,
            ssl=ssl,
            ping_interval=20,
            ping_timeout=20,
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting connections and wait until the server is closed."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no such path; use {PATH}\n")
        token = _token(request, url.query)
        if not token:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "missing access token\n")
        try:
            claims = await self._tokens.verify(token, timeout=self._auth_timeout)
        except ApiError as exc:  # forged, expired, revoked
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, f"{exc.message}\n")
        except Exception as exc:  # Redis (revocation list) unreachable: not the client's fault
            logger.warning("websocket handshake: token check failed: %s", type(exc).__name__)
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "token check unavailable; retry\n")
        setattr(connection, _AUTH_ATTR, (token, claims))
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        token, claims = getattr(connection, _AUTH_ATTR)
        try:
            lease = self._streams.admit(claims.user_id)
        except TooManyStreams as exc:
            await connection.close(code=CLOSE_TRY_LATER, reason=exc.message)
            return
        try:
            await self._serve(connection, token, claims)
        finally:
            lease.release()

    async def _serve(self, connection: ServerConnection, token: str, claims: Claims) -> None:
        async def send(event: Notification) -> None:
            await connection.send(frame(event))  # returns once the frame is in the transport

        client = asyncio.create_task(
            self._streams.run(token=token, claims=claims, transport="websocket", send=send)
        )
        # The client loop waits on events, not on the socket: watch the socket too, so that a
        # client that leaves ends its session at once rather than at the next event.
        closed = asyncio.create_task(connection.wait_closed())
        try:
            await asyncio.wait({client, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not client.done():
                client.cancel()
            (result,) = await asyncio.gather(client, return_exceptions=True)
        if isinstance(result, SubscriptionOverflow):
            await connection.close(
                code=CLOSE_TOO_SLOW, reason="too slow: reconnect and catch up with GetMessages"
            )
        elif isinstance(result, TokenEnded):
            await connection.close(code=CLOSE_TOKEN_ENDED, reason=result.reason)


# A frame's fields in the order clients have always had them; user_id (the connection's user)
# and receipt_keys and v (the gateway's own business) stay out, and so do fields not set.
_FRAME_FIELDS = (
    "kind",
    "message_id",
    "conversation_id",
    "at_ms",
    "sender_id",
    "content",
    "status",
    "recipient_id",
    "channel",
    "ts_ms",
)


def frame(event: Notification) -> str:
    """The WebSocket frame of a notification: a JSON object of its fields that are set."""
    return json.dumps({name: value for name in _FRAME_FIELDS if (value := getattr(event, name)) is not None})


def _token(request: Request, query: str) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    values = parse_qs(query).get("access_token")
    return values[0] if values else None
