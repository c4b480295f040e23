"""The gateway inside the API process: EventService (gRPC stream), the WebSocket server and the feed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from api.auth import current_user_id
from api.deps import ApiDeps
from api.server import ServiceRegistration
from api.tls import server_ssl_context
from chat4all.v1 import events_pb2, events_pb2_grpc, messages_pb2
from gateway.client_loop import run_client
from gateway.events import MESSAGE_NEW, MESSAGE_STATUS, LiveEvent
from gateway.hub import Hub, SubscriptionOverflow
from gateway.notifications import NotificationFeed
from gateway.sessions import SessionRegistry
from gateway.websocket import WebSocketGateway

logger = logging.getLogger(__name__)

FEED_READY_WAIT_SECONDS = 3.0  # positioning takes well under a second when Kafka is up

_KINDS = {MESSAGE_NEW: events_pb2.EVENT_KIND_MESSAGE_NEW, MESSAGE_STATUS: events_pb2.EVENT_KIND_MESSAGE_STATUS}


def to_proto(event: LiveEvent) -> events_pb2.Event:
    at = Timestamp()
    at.FromMilliseconds(event.at_ms)
    status = messages_pb2.MessageStatus.Value(f"MESSAGE_STATUS_{event.status}") if event.status else 0
    return events_pb2.Event(
        kind=_KINDS.get(event.kind, events_pb2.EVENT_KIND_UNSPECIFIED), message_id=event.message_id,
        conversation_id=event.conversation_id, sender_id=event.sender_id or "", content=event.content or "",
        status=status, recipient_id=event.recipient_id or "", channel=event.channel or "", at=at,
    )


class EventServicer(events_pb2_grpc.EventServiceServicer):
    """Subscribe streams; start/stop run the notification feed and the WebSocket server."""

    def __init__(self, *, deps: ApiDeps) -> None:
        settings = deps.settings
        self._settings = settings
        self.hub = Hub(queue_size=settings.realtime_queue_size)
        self.sessions = SessionRegistry(redis=deps.redis, ttl_seconds=settings.realtime_session_ttl_seconds)
        self.feed = NotificationFeed(settings=settings, hub=self.hub, publisher=deps.publisher)
        self.websocket = WebSocketGateway(
            hub=self.hub, sessions=self.sessions, tokens=deps.tokens,
            heartbeat_seconds=settings.realtime_heartbeat_seconds, auth_timeout=settings.api_storage_timeout_seconds,
        )

    async def start(self) -> None:
        self.feed.start()
        # Serve only once the feed sits at the end of `notifications`, so that a client that
        # connects as soon as the API answers misses nothing; Kafka being down must not keep
        # the API from starting, hence the bound.
        try:
            await asyncio.wait_for(self.feed.ready.wait(), FEED_READY_WAIT_SECONDS)
        except TimeoutError:
            logger.warning("realtime gateway: Kafka not reachable yet; live events start when it is")
        port = await self.websocket.start(
            host=self._settings.api_host, port=self._settings.websocket_port, ssl=server_ssl_context(settings=self._settings),
        )
        logger.info("realtime gateway: WebSocket on %s:%s%s", self._settings.api_host, port, "/v1/events")

    async def stop(self) -> None:
        await self.websocket.stop()
        await self.feed.stop()

    async def Subscribe(
        self, request: events_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.SubscribeResponse]:
        user_id = current_user_id(context)
        # The generator form cannot yield from a callback, so hand events over a one-slot queue.
        out: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=1)
        client = asyncio.create_task(run_client(
            user_id=user_id, transport="grpc", hub=self.hub, sessions=self.sessions,
            heartbeat_seconds=self._settings.realtime_heartbeat_seconds, send=out.put,
        ))
        try:
            while True:
                getter = asyncio.ensure_future(out.get())
                done, _ = await asyncio.wait({getter, client}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield events_pb2.SubscribeResponse(event=to_proto(getter.result()))
                    continue
                getter.cancel()
                exc = client.exception()
                if isinstance(exc, SubscriptionOverflow):
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        "client fell behind; reconnect and catch up with GetMessages")
                raise exc or RuntimeError("event stream ended")
        finally:
            client.cancel()


def registration(deps: ApiDeps) -> ServiceRegistration:
    """EXTRA_SERVICES entry point (api/server.py)."""
    return ServiceRegistration(
        add_fn=events_pb2_grpc.add_EventServiceServicer_to_server,
        servicer=EventServicer(deps=deps),
        name=events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    )
