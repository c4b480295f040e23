"""The gateway inside the API process: EventService (gRPC stream), the WebSocket server and the feed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from api.auth_interceptor import bearer_token, current_claims
from api.deps import ApiDeps
from api.errors import ApiError
from api.registration import ServiceRegistration, full_name
from api.tls import server_ssl_context
from api.tokens import Claims
from chat4all.redis_client import redis_client
from chat4all.v1 import events_pb2, events_pb2_grpc, messages_pb2
from chat4all.wire import Kind, Notification
from gateway.hub import Hub, SubscriptionOverflow
from gateway.limits import StreamLimits, TooManyStreams
from gateway.notifications import NotificationFeed
from gateway.revocations import RevocationNotices
from gateway.sessions import SessionRegistry
from gateway.streams import LiveStreams
from gateway.token_guard import TokenEnded
from gateway.websocket import WebSocketGateway

logger = logging.getLogger(__name__)

FEED_READY_WAIT_SECONDS = 3.0  # positioning takes well under a second when Kafka is up
# A stream over a cap waits for another to end, which takes however long the client keeps it:
# a retry-after is a hint, not a promise.
CAP_RETRY_AFTER_SECONDS = "5"

_KINDS = {
    Kind.MESSAGE_NEW: events_pb2.EVENT_KIND_MESSAGE_NEW,
    Kind.MESSAGE_STATUS: events_pb2.EVENT_KIND_MESSAGE_STATUS,
}


def to_proto(event: Notification) -> events_pb2.Event:
    """The Event message of a live notification."""
    at = Timestamp()
    at.FromMilliseconds(event.at_ms)
    status = messages_pb2.MessageStatus.Value(f"MESSAGE_STATUS_{event.status}") if event.status else 0
    return events_pb2.Event(
        kind=_KINDS.get(event.kind, events_pb2.EVENT_KIND_UNSPECIFIED),
        message_id=event.message_id,
        conversation_id=event.conversation_id,
        sender_id=event.sender_id or "",
        content=event.content or "",
        status=status,
        recipient_id=event.recipient_id or "",
        channel=event.channel or "",
        at=at,
    )


class EventServicer(events_pb2_grpc.EventServiceServicer):
    """Subscribe streams; start/stop run the notification feed and the WebSocket server."""

    def __init__(self, *, deps: ApiDeps) -> None:
        settings = deps.settings
        self._settings = settings
        self.hub = Hub(queue_size=settings.realtime_queue_size)
        self.sessions = SessionRegistry(redis=deps.redis, ttl_seconds=settings.realtime_session_ttl_seconds)
        self.feed = NotificationFeed(settings=settings, hub=self.hub, publisher=deps.publisher)
        # Its own Redis client: the pub/sub subscription keeps a connection for good.
        self.notices = RevocationNotices(redis=redis_client(settings))
        self.streams = LiveStreams(
            hub=self.hub,
            sessions=self.sessions,
            tokens=deps.tokens,
            notices=self.notices,
            limits=StreamLimits(
                per_user=settings.realtime_max_streams_per_user, total=settings.realtime_max_streams
            ),
            on_written=self.feed.written,
            heartbeat_seconds=settings.realtime_heartbeat_seconds,
            token_timeout=settings.api_storage_timeout_seconds,
        )
        self.websocket = WebSocketGateway(
            streams=self.streams,
            tokens=deps.tokens,
            auth_timeout=settings.api_storage_timeout_seconds,
        )

    async def start(self) -> None:
        """Start the notification feed and the revocation notices, then the WebSocket server."""
        self.feed.start()
        self.notices.start()
        # Serve only once the feed sits at the end of `notifications`, so that a client that
        # connects as soon as the API answers misses nothing; Kafka being down must not keep
        # the API from starting, hence the bound.
        try:
            await asyncio.wait_for(self.feed.ready.wait(), FEED_READY_WAIT_SECONDS)
        except TimeoutError:
            logger.warning("realtime gateway: Kafka not reachable yet; live events start when it is")
        port = await self.websocket.start(
            host=self._settings.api_host,
            port=self._settings.websocket_port,
            ssl=server_ssl_context(settings=self._settings),
        )
        logger.info("realtime gateway: WebSocket on %s:%s%s", self._settings.api_host, port, "/v1/events")

    async def stop(self) -> None:
        """Stop the WebSocket server, the revocation notices and the notification feed."""
        await self.websocket.stop()
        await self.notices.stop()
        await self.feed.stop()

    async def Subscribe(
        self, request: events_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.SubscribeResponse]:
        """Subscribe: stream the caller's live events until the client cancels or its token ends.

        RESOURCE_EXHAUSTED (trailer ``retry-after``) over a live-stream cap, and when the client
        falls more than ``realtime_queue_size`` events behind; UNAUTHENTICATED once its token
        expires or is revoked.
        """
        claims = current_claims(context)
        try:
            lease = self.streams.admit(claims.user_id)
        except TooManyStreams as exc:
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                exc.message,
                trailers=(("retry-after", CAP_RETRY_AFTER_SECONDS),),
            ) from None
        try:
            async for event in self._events(claims, bearer_token(context.invocation_metadata()), context):
                yield event
        finally:
            lease.release()

    async def _events(
        self, claims: Claims, token: str, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.SubscribeResponse]:
        # The generator form cannot yield from a callback, so hand events over a one-slot queue;
        # each comes with a future resolved once gRPC wrote it (the generator resumes after a
        # yield only when the previous message was written), which is when `send` returns.
        out: asyncio.Queue[tuple[Notification, asyncio.Future[None]]] = asyncio.Queue(maxsize=1)

        async def send(event: Notification) -> None:
            written = asyncio.get_running_loop().create_future()
            await out.put((event, written))
            await written

        client = asyncio.create_task(
            self.streams.run(token=token, claims=claims, transport="grpc", send=send)
        )
        # grpc.aio does not cancel a streaming handler whose connection died (keepalive timeout,
        # reset): its done callback runs, though. End the stream there, or it lingers until an
        # event fails to be written.
        context.add_done_callback(lambda _ctx: client.cancel())
        try:
            while True:
                getter = asyncio.ensure_future(out.get())
                done, _ = await asyncio.wait({getter, client}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    event, written = getter.result()
                    yield events_pb2.SubscribeResponse(event=to_proto(event))
                    if not written.done():
                        written.set_result(None)
                    continue
                getter.cancel()
                exc = client.exception()
                if isinstance(exc, SubscriptionOverflow):
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "client fell behind; reconnect and catch up with GetMessages",
                    )
                if isinstance(exc, TokenEnded):
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.reason)
                raise exc or RuntimeError("event stream ended")
        finally:
            client.cancel()
            await asyncio.gather(client, return_exceptions=True)


def registration(deps: ApiDeps) -> ServiceRegistration:
    """EventService, for the API server's list of services (cli/api.py)."""
    return ServiceRegistration(
        add_fn=events_pb2_grpc.add_EventServiceServicer_to_server,
        servicer=EventServicer(deps=deps),
        name=full_name(events_pb2, "EventService"),
    )
