"""MessageService: SendMessage (idempotent, rate limited, acked by Kafka), GetMessages, MarkRead."""

from __future__ import annotations

import asyncio
import logging
import uuid

import grpc
import uuid6

from api import limits, metrics
from api.access import require_participant
from api.auth_interceptor import current_user_uuid
from api.convert import parse_uuid, ts_from_datetime, ts_from_ms
from api.db.messages import StoredMessage
from api.deadline import budget
from api.deps import ApiDeps
from api.errors import ApiError, denied, invalid, not_found
from api.files.records import FileRecord
from api.idempotency import ClaimedMessage, fingerprint
from api.pagination import MAX_PAGE_SIZE, cursor_ms, cursor_uuid, page_size
from api.publisher import NotPublished
from api.registration import ServiceRegistration, full_name
from chat4all import tracing
from chat4all.clock import as_utc, now_ms, to_ms
from chat4all.topic_names import MESSAGES, STATUS_UPDATES
from chat4all.v1 import common_pb2, messages_pb2_grpc
from chat4all.v1 import messages_pb2 as pb
from chat4all.wire import DELIVERY_CHANNELS, Channel, MessageEvent, Status, StatusUpdate, encode

logger = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE_ID = limits.CLIENT_MESSAGE_ID_CHARS
_STATUS = {
    Status.SENT: pb.MESSAGE_STATUS_SENT,
    Status.DELIVERED: pb.MESSAGE_STATUS_DELIVERED,
    Status.READ: pb.MESSAGE_STATUS_READ,
    Status.FAILED: pb.MESSAGE_STATUS_FAILED,
}


def status_enum(value: str | None) -> int:
    """The MessageStatus enum value of a stored status name (UNSPECIFIED for none or an unknown one)."""
    return _STATUS.get(value or "", pb.MESSAGE_STATUS_UNSPECIFIED)


def validate_send_channels(channels: list[str]) -> list[str]:
    """The channels SendMessage may be restricted to, without duplicates, in the given order."""
    out: list[str] = []
    for channel in channels:
        if channel not in DELIVERY_CHANNELS:
            raise invalid(f"channels: unknown channel {channel[:32]!r}; use {', '.join(DELIVERY_CHANNELS)}")
        if channel not in out:
            out.append(channel)
    return out


def file_metadata(record: FileRecord) -> common_pb2.FileMetadata:
    """The FileMetadata message of a file record."""
    return common_pb2.FileMetadata(
        file_id=str(record.file_id),
        filename=record.filename,
        mime_type=record.mime_type,
        size=record.size,
        sha256=record.sha256,
        created_at=ts_from_datetime(record.created_at),
    )


def message_proto(row: StoredMessage, files: dict[uuid.UUID, common_pb2.FileMetadata]) -> pb.Message:
    """The Message of a stored message, with its receipts and the metadata of its file (if in ``files``)."""
    receipts = [
        pb.Receipt(
            recipient_id=str(r.recipient_id),
            channel=r.channel or key.partition(":")[2],
            status=status_enum(r.status),
            delivered_at=ts_from_datetime(r.delivered_at),
            read_at=ts_from_datetime(r.read_at),
        )
        for key, r in sorted((row.receipts or {}).items())
    ]
    return pb.Message(
        message_id=str(row.message_id),
        conversation_id=str(row.conversation_id),
        sender_id=str(row.sender_id),
        content=row.content or "",
        timestamp=ts_from_datetime(row.ts),
        status=status_enum(row.status),
        delivered_at=ts_from_datetime(row.delivered_at),
        read_at=ts_from_datetime(row.read_at),
        file_id=str(row.file_id) if row.file_id else "",
        file=files.get(row.file_id) if row.file_id else None,
        receipts=receipts,
    )


class MessageServicer(messages_pb2_grpc.MessageServiceServicer):
    """Messages of conversations the caller takes part in."""

    def __init__(self, *, deps: ApiDeps) -> None:
        self._deps = deps

    async def _file_record(self, file_id: uuid.UUID, context: grpc.aio.ServicerContext) -> FileRecord | None:
        """The file's record (api.files.records), within the call's deadline."""
        timeout = budget(context, self._deps.settings.api_storage_timeout_seconds)
        records = await self._deps.file_tables.records(timeout=timeout)
        async with asyncio.timeout(timeout + 0.05):
            return await records.get(file_id, timeout=timeout)

    async def _rate_limit(self, user_id: uuid.UUID, context: grpc.aio.ServicerContext) -> None:
        timeout = budget(context, self._deps.settings.api_storage_timeout_seconds)
        decision = await self._deps.send_limiter.acquire(str(user_id), timeout=timeout)
        if not decision.allowed:
            metrics.RATE_LIMITED.inc()
            wait = f"{decision.retry_after_seconds:.3f}"
            settings = self._deps.settings
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"rate limit of {settings.rate_limit_per_second:g} messages/s (bursts of {settings.rate_limit_burst})"
                f" reached; retry in {wait} s",
                trailers=(("retry-after", wait),),
            )

    async def start(self) -> None:
        """Start the admission control's lag readings."""
        await self._deps.admission.start()

    async def stop(self) -> None:
        """Stop the admission control's lag readings."""
        await self._deps.admission.stop()

    async def SendMessage(
        self, request: pb.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendMessageResponse:
        """SendMessage: publish a message and answer its id once Kafka acknowledged it (acks=all).

        Idempotent per (sender, client_message_id). RESOURCE_EXHAUSTED (trailer ``retry-after``) when
        rate limited or shed, INVALID_ARGUMENT for bad content, NOT_FOUND or PERMISSION_DENIED for a
        conversation or file the caller may not use, UNAVAILABLE when Kafka did not take it.
        """
        caller = current_user_uuid(context)
        admission = self._deps.admission
        # Shed before anything is spent on the call, the caller's rate-limit tokens included.
        admission.check()
        admission.inflight += 1
        try:
            return await self._send(request, caller, context)
        finally:
            admission.inflight -= 1

    async def _send(
        self, request: pb.SendMessageRequest, caller: uuid.UUID, context: grpc.aio.ServicerContext
    ) -> pb.SendMessageResponse:
        await self._rate_limit(caller, context)
        settings = self._deps.settings
        conversation = await require_participant(
            self._deps.conversations, request.conversation_id, caller, context=context
        )
        content, cmid = request.content, request.client_message_id
        if not content and not request.file_id:
            raise invalid("a message needs content or a file_id")
        if len(content) > settings.max_content_chars:
            raise invalid(f"content is {len(content)} characters; the limit is {settings.max_content_chars}")
        if len(cmid) > MAX_CLIENT_MESSAGE_ID:
            raise invalid(f"client_message_id is longer than {MAX_CLIENT_MESSAGE_ID} characters")
        channels = validate_send_channels(list(request.channels))
        file_id = None
        if request.file_id:
            file_id = parse_uuid(request.file_id, "file_id")
            file_record = await self._file_record(file_id, context)
            if file_record is None:
                raise not_found(f"file {file_id} not found (is its upload complete?)")
            if file_record.conversation_id != conversation.conversation_id:
                raise denied(f"file {file_id} was uploaded to another conversation")

        # The id and timestamp are fixed here, once: every later step (router, tracker) is idempotent on them.
        message_id = uuid6.uuid7()
        ts_ms = message_id.time  # UUIDv7's own millisecond timestamp, so id order = time order
        claimed: ClaimedMessage | None = None
        replay = False
        if cmid:
            proposed = ClaimedMessage(
                message_id=message_id,
                conversation_id=conversation.conversation_id,
                ts_ms=ts_ms,
                fingerprint=fingerprint(
                    conversation_id=conversation.conversation_id,
                    content=content,
                    file_id=file_id,
                    channels=channels,
                ),
            )
            claim = await self._deps.send_claims.claim(caller, cmid, proposed, context=context)
            if claim.replay:
                earlier = claim.message
                if earlier.conversation_id != conversation.conversation_id:
                    raise invalid("client_message_id was already used for a message in another conversation")
                if earlier.fingerprint is not None and earlier.fingerprint != proposed.fingerprint:
                    raise invalid(
                        "client_message_id was already used for a different message (content, file_id or channels differ)"
                    )
                message_id, ts_ms, replay = earlier.message_id, earlier.ts_ms, True
            else:
                claimed = proposed

        response = pb.SendMessageResponse(
            message_id=str(message_id), timestamp=ts_from_ms(ts_ms), status=pb.MESSAGE_STATUS_SENT
        )
        if replay and await self._deps.messages.by_id(message_id=message_id, context=context) is not None:
            return response  # stored already: nothing to publish again
        conversation_id = str(conversation.conversation_id)
        tracing.annotate(message_id=str(message_id), conversation_id=conversation_id)
        event = MessageEvent(
            message_id=str(message_id),
            conversation_id=conversation_id,
            sender_id=str(caller),
            ts_ms=ts_ms,
            content=content,
            file_id=str(file_id) if file_id else None,
            channels=channels,
            client_message_id=cmid or None,
        )
        try:
            # A replay that is not stored yet is published again: the router dedups by message_id.
            await self._deps.publisher.publish(
                MESSAGES, key=conversation_id, value=encode(event), context=context
            )
        except NotPublished:
            if claimed is not None:
                await self._deps.send_claims.release(caller, cmid, claimed)
            raise
        self._deps.admission.published()
        metrics.MESSAGES_SENT.inc()
        return response

    async def GetMessages(
        self, request: pb.GetMessagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMessagesResponse:
        """GetMessages: a conversation's history, oldest first, one page per call.

        A message fetched by a recipient becomes DELIVERED to that recipient on the native channel.
        """
        caller = current_user_uuid(context)
        conversation = await require_participant(
            self._deps.conversations, request.conversation_id, caller, context=context
        )
        size = page_size(request.page_size)
        cursor = self._deps.cursors.decode("messages", request.page_token)
        cid = conversation.conversation_id
        after = None if cursor is None else (as_utc(cursor_ms(cursor, "ts")), cursor_uuid(cursor, "id"))
        rows = await self._deps.messages.page(
            conversation_id=cid, after=after, limit=size + 1, context=context
        )
        more = len(rows) > size
        rows = rows[:size]

        file_ids = sorted({row.file_id for row in rows if row.file_id})
        file_records = await asyncio.gather(*(self._file_record(f, context) for f in file_ids))
        files = {f: file_metadata(r) for f, r in zip(file_ids, file_records, strict=True) if r is not None}
        messages = [message_proto(row, files) for row in rows]
        await self._acknowledge_delivery(caller, rows, context)
        token = ""
        if more:
            last = rows[-1]
            token = self._deps.cursors.encode("messages", {"ts": to_ms(last.ts), "id": str(last.message_id)})
        return pb.GetMessagesResponse(messages=messages, next_page_token=token)

    async def _acknowledge_delivery(
        self, caller: uuid.UUID, rows: list[StoredMessage], context: grpc.aio.ServicerContext
    ) -> None:
        """Native channel: a message fetched by its recipient is DELIVERED to that recipient.

        Best effort: if Kafka is down the history is still returned, and the next fetch tries again
        (the receipt is still SENT).
        """
        key = f"{caller}:{Channel.NATIVE}"
        at_ms = now_ms()
        futures = []
        try:
            for row in rows:
                receipt = (row.receipts or {}).get(key)
                if row.sender_id == caller or receipt is None or receipt.status != Status.SENT:
                    continue
                update = StatusUpdate(
                    message_id=str(row.message_id),
                    conversation_id=str(row.conversation_id),
                    ts_ms=to_ms(row.ts),
                    recipient_id=str(caller),
                    channel=Channel.NATIVE,
                    status=Status.DELIVERED,
                    at_ms=at_ms,
                    receipt_keys=sorted(row.receipts),
                    source="api.get_messages",
                    sender_id=str(row.sender_id),
                )
                fut = await self._deps.publisher.send_nowait(
                    STATUS_UPDATES, key=str(row.message_id), value=encode(update)
                )
                if fut is not None:
                    futures.append(fut)
            if futures:
                await asyncio.wait_for(asyncio.gather(*futures), budget(context, 2.0))
        except Exception as exc:
            logger.warning("could not publish DELIVERED receipts: %s: %s", type(exc).__name__, exc)

    async def MarkRead(
        self, request: pb.MarkReadRequest, context: grpc.aio.ServicerContext
    ) -> pb.MarkReadResponse:
        """MarkRead: mark messages READ by the caller, on every channel.

        NOT_FOUND if one is not a message of the conversation (an unknown id or another conversation's).
        """
        caller = current_user_uuid(context)
        conversation = await require_participant(
            self._deps.conversations, request.conversation_id, caller, context=context
        )
        if not request.message_ids:
            raise invalid("message_ids is empty")
        if len(request.message_ids) > MAX_PAGE_SIZE:
            raise invalid(f"at most {MAX_PAGE_SIZE} message_ids per call")
        ids = list(dict.fromkeys(parse_uuid(m, "message_ids") for m in request.message_ids))
        found = await asyncio.gather(*(self._deps.messages.by_id(message_id=m, context=context) for m in ids))
        updates = []
        at_ms = now_ms()
        for message_id, row in zip(ids, found, strict=True):
            # A message of another conversation is NOT_FOUND here, like an unknown one: the caller
            # learns nothing about conversations it is not part of.
            if row is None or row.conversation_id != conversation.conversation_id:
                raise not_found(
                    f"message {message_id} not found in conversation {conversation.conversation_id}"
                )
            if row.sender_id == caller:
                continue  # one's own message has no receipt for oneself
            updates.append(
                StatusUpdate(
                    message_id=str(message_id),
                    conversation_id=str(row.conversation_id),
                    ts_ms=to_ms(row.ts),
                    recipient_id=str(caller),
                    channel=Channel.ALL,
                    status=Status.READ,
                    at_ms=at_ms,
                    source="api.mark_read",
                    sender_id=str(row.sender_id),
                )
            )
        # Every id was checked before anything is published. READ is idempotent, so a retry after
        # a partial failure (UNAVAILABLE) is safe.
        await asyncio.gather(
            *(
                self._deps.publisher.publish(
                    STATUS_UPDATES, key=u.message_id, value=encode(u), context=context
                )
                for u in updates
            )
        )
        return pb.MarkReadResponse()


def registration(deps: ApiDeps) -> ServiceRegistration:
    """MessageService, for the API server's list of services (cli/api.py)."""
    return ServiceRegistration(
        add_fn=messages_pb2_grpc.add_MessageServiceServicer_to_server,
        servicer=MessageServicer(deps=deps),
        name=full_name(pb, "MessageService"),
    )
