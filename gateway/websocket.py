"""WebSocket face of the gateway: ws://host:CHAT4ALL_WEBSOCKET_PORT/v1/events, one JSON event a frame.

Authentication: `Authorization: Bearer <jwt>` header or, for browsers that cannot set headers,
`?access_token=<jwt>`. A refused handshake answers HTTP 401 with the reason.
"""

from __future__ import annotations

import asyncio
import http
import logging
from ssl import SSLContext
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from api.errors import ApiError
from api.tokens import TokenService
from gateway.client_loop import run_client
from gateway.events import LiveEvent
from gateway.hub import Hub, SubscriptionOverflow
from gateway.sessions import SessionRegistry

logger = logging.getLogger(__name__)

PATH = "/v1/events"


class WebSocketGateway:
    def __init__(
        self, *, hub: Hub, sessions: SessionRegistry, tokens: TokenService, heartbeat_seconds: float,
        auth_timeout: float,
    ) -> None:
        self._hub = hub
        self._sessions = sessions
        self._tokens = tokens
        self._heartbeat = heartbeat_seconds
        self._auth_timeout = auth_timeout
        self._users: dict[int, str] = {}  # id(connection) -> user id, set by the handshake
        self._server: Server | None = None

    async def start(self, *, host: str, port: int, ssl: SSLContext | None = None) -> int:
        self._server = await serve(self._handle, host, port, process_request=self._authenticate, ssl=ssl,
                                   ping_interval=20, ping_timeout=20)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
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
            logger.warning("websocket handshake: token check failed: %s", exc)
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "token check unavailable; retry\n")
        self._users[id(connection)] = claims.user_id
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        user_id = self._users.pop(id(connection))

        async def send(event: LiveEvent) -> None:
            await connection.send(event.to_json())

        client = asyncio.create_task(run_client(
            user_id=user_id, transport="websocket", hub=self._hub, sessions=self._sessions,
            heartbeat_seconds=self._heartbeat, send=send,
        ))
        # The client loop waits on events, not on the socket: watch the socket too, so that a
        # client that leaves ends its session at once rather than at the next event.
        closed = asyncio.create_task(connection.wait_closed())
        try:
            await asyncio.wait({client, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not client.done():
                client.cancel()
            results = await asyncio.gather(client, return_exceptions=True)
        if isinstance(results[0], SubscriptionOverflow):
            await connection.close(code=1008, reason="too slow: reconnect and catch up with GetMessages")


def _token(request: Request, query: str) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    values = parse_qs(query).get("access_token")
    return values[0] if values else None
