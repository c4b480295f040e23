"""FileService: resumable uploads into S3, upload status, presigned download URLs (registered by api.server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc

from api.access import require_participant
from api.auth_interceptor import current_user_uuid
from api.convert import parse_uuid, ts_from_datetime
from api.deps import ApiDeps
from api.errors import ApiError, invalid, not_found
from api.files.cleaner import run_cleaner
from api.files.errors import S3_OUTAGE, FileError, InvalidUpload
from api.files.handlers import add_file_service
from api.files.memory import set_mmap_threshold
from api.files.uploader import Uploader
from api.files.validation import UploadRequest
from api.registration import ServiceRegistration, full_name
from chat4all.clock import utc_now
from chat4all.objectstore import ObjectStore, build_object_store
from chat4all.v1 import files_pb2, files_pb2_grpc

logger = logging.getLogger(__name__)


def api_error(exc: FileError) -> ApiError:
    """The answer to a files-package error: its status, its message, and its trailers."""
    return ApiError(exc.code, exc.message, trailers=exc.trailers)


class FileServicer(files_pb2_grpc.FileServiceServicer):
    """Uploads (see api.files), their status, and download URLs; participants only."""

    def __init__(self, *, deps: ApiDeps, objects: ObjectStore | None = None) -> None:
        self._deps = deps
        self._settings = deps.settings
        self._objects = objects or build_object_store(deps.settings)
        self._uploader: Uploader | None = None
        self._ready = asyncio.Lock()
        self._bucket_ok = False
        self._cleaner: asyncio.Task | None = None

    # --- lifecycle (called by api.server) --------------------------------------------------

    async def start(self) -> None:
        """Create the bucket if missing and start the periodic clean-up of expired sessions."""
        if set_mmap_threshold(self._settings.upload_mmap_threshold_bytes):
            logger.debug(
                "malloc mmap threshold fixed at %d bytes", self._settings.upload_mmap_threshold_bytes
            )
        try:
            await self._objects.ensure_bucket()
            self._bucket_ok = True
        except Exception as exc:  # S3 down at start: retried on first use
            logger.warning("bucket %s not checked at start: %s", self._objects.bucket, exc)
        self._cleaner = asyncio.create_task(self._clean_periodically())

    async def stop(self) -> None:
        """Stop the clean-up task, then wait for cut streams to finish saving their tails."""
        if self._cleaner is not None:
            self._cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleaner
        if self._uploader is not None:
            # Streams cut by the shutdown are saving their tails: let them finish first.
            await self._uploader.drain()

    async def _clean_periodically(self) -> None:
        interval = self._settings.upload_cleanup_interval_seconds
        while True:
            try:
                uploader = await self._get_uploader()
            except Exception as exc:
                logger.warning("upload clean-up waits for Cassandra: %s", exc)
                await asyncio.sleep(interval)
                continue
            await run_cleaner(uploader, interval_seconds=interval)

    async def _get_uploader(self) -> Uploader:
        if self._uploader is not None:
            return self._uploader
        async with self._ready:
            if self._uploader is None:
                tables = self._deps.file_tables
                self._uploader = Uploader(
                    sessions=await tables.sessions(),
                    records=await tables.records(),
                    objects=self._objects,
                    max_file_bytes=self._settings.max_file_bytes,
                    part_bytes=self._settings.upload_part_bytes,
                    max_chunk_bytes=self._settings.upload_max_chunk_bytes,
                    session_ttl_seconds=self._settings.upload_session_ttl_seconds,
                    max_streams=self._settings.upload_max_streams,
                    max_streams_per_user=self._settings.upload_max_streams_per_user,
                    max_sessions_per_user=self._settings.upload_max_sessions_per_user,
                    idle_seconds=self._settings.upload_idle_seconds,
                    parts_in_flight=self._settings.upload_parts_in_flight,
                )
        return self._uploader

    async def _ensure_bucket(self) -> None:
        if not self._bucket_ok:
            await self._objects.ensure_bucket()
            self._bucket_ok = True

    # --- RPCs ------------------------------------------------------------------------------

    async def UploadFile(
        self, request_iterator: AsyncIterator[files_pb2.UploadFileRequest], context: grpc.aio.ServicerContext
    ) -> files_pb2.UploadFileResponse:
        """UploadFile: store a file (an info message, then chunks) in S3; answers its id, size and SHA-256.

        INVALID_ARGUMENT for a malformed stream or a size over the limit, ABORTED for a stream that ends
        early (resumable, trailer ``bytes-received``) or sends no info in time, DATA_LOSS for a checksum
        mismatch, UNAVAILABLE while object storage is down (api/files/errors.py maps the rest).
        """
        caller = current_user_uuid(context)
        idle = self._settings.upload_idle_seconds
        try:
            async with asyncio.timeout(idle):
                first = await anext(request_iterator)
        except StopAsyncIteration:
            raise invalid("empty stream: the first message must be info") from None
        except TimeoutError:
            raise ApiError(
                grpc.StatusCode.ABORTED, f"no info message within {idle:g} s: stream closed"
            ) from None
        if first.WhichOneof("payload") != "info":
            raise invalid("the first message of UploadFile must be info (FileInfo), then chunks")
        info = first.info
        conversation = await require_participant(
            self._deps.conversations, info.conversation_id, caller, context=context
        )
        uploader = await self._get_uploader()
        try:
            await self._ensure_bucket()
        except S3_OUTAGE as exc:
            logger.warning("object storage unavailable: %s", type(exc).__name__)
            raise ApiError(grpc.StatusCode.UNAVAILABLE, "object storage is unavailable; try again") from None
        req = UploadRequest(
            uploader_id=caller,
            conversation_id=conversation.conversation_id,
            filename=info.filename,
            mime_type=info.mime_type,
            size=info.size,
            sha256=info.sha256,
            upload_id=info.upload_id,
            offset=info.offset if info.HasField("offset") else None,
        )

        async def chunks() -> AsyncIterator[bytes | memoryview]:
            async for message in request_iterator:
                if message.WhichOneof("payload") != "chunk":
                    raise InvalidUpload("only chunks may follow the first message (info)")
                data = message.chunk
                del message  # the receiver copies the chunk into its part buffer; nothing else keeps it
                yield data

        try:
            stored = await uploader.upload(req, chunks())
        except FileError as exc:
            raise api_error(exc) from None
        except S3_OUTAGE as exc:
            logger.warning("upload %s: object storage unavailable: %s", req.upload_id, type(exc).__name__)
            raise ApiError(
                grpc.StatusCode.UNAVAILABLE,
                "object storage is unavailable; the bytes already stored are kept, resume later",
            ) from None
        return files_pb2.UploadFileResponse(
            file_id=str(stored.file_id), size=stored.size, sha256=stored.sha256
        )

    async def GetUploadStatus(
        self, request: files_pb2.GetUploadStatusRequest, context: grpc.aio.ServicerContext
    ) -> files_pb2.GetUploadStatusResponse:
        """GetUploadStatus: how many bytes of the caller's upload session are durable, its size and expiry."""
        if not request.upload_id:
            raise invalid("upload_id is required")
        uploader = await self._get_uploader()
        try:
            session = await uploader.status(upload_id=request.upload_id, caller_id=current_user_uuid(context))
        except FileError as exc:
            raise api_error(exc) from None
        return files_pb2.GetUploadStatusResponse(
            bytes_received=session.bytes_received,
            size=session.size,
            expires_at=ts_from_datetime(session.expires_at),
        )

    async def GetDownloadUrl(
        self, request: files_pb2.GetDownloadUrlRequest, context: grpc.aio.ServicerContext
    ) -> files_pb2.GetDownloadUrlResponse:
        """GetDownloadUrl: a presigned GET URL of a file; NOT_FOUND, or PERMISSION_DENIED to others."""
        file_id = parse_uuid(request.file_id, "file_id")
        records = await self._deps.file_tables.records()
        record = await records.get(file_id)
        if record is None:
            raise not_found(f"file {file_id} not found")
        await require_participant(
            self._deps.conversations, str(record.conversation_id), current_user_uuid(context), context=context
        )
        ttl = self._settings.presigned_url_ttl_seconds
        expires_at = utc_now() + timedelta(seconds=ttl)
        url = self._objects.presigned_get(record.object_key, ttl_seconds=ttl, filename=record.filename)
        return files_pb2.GetDownloadUrlResponse(url=url, expires_at=ts_from_datetime(expires_at))


def registration(deps: ApiDeps) -> ServiceRegistration:
    """FileService, for the API server's list of services (cli/api.py)."""
    return ServiceRegistration(
        add_fn=add_file_service,
        servicer=FileServicer(deps=deps),
        name=full_name(files_pb2, "FileService"),
    )
