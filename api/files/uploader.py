"""Drives upload streams into S3 (one Uploader per API process): slots, locks, sessions, endings.

An upload's bytes travel through api.files.receiver, whose docstring says where they are at any
time; this module decides which session a stream writes, who may stream at once, and what is
saved when a stream ends, is cut or fails.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime, timedelta
from typing import Any

from api.files.errors import (
    InvalidUpload,
    OffsetMismatch,
    SessionExpired,
    SessionNotFound,
    StreamIdle,
    TooManyBytes,
    TooManyStreams,
    UploadBusy,
    UploadError,
    UploadIncomplete,
)
from api.files.hashing import ResumableHashes
from api.files.receiver import Receiver, StoredFile
from api.files.records import FileRecordRepository
from api.files.sessions import COMPLETE, EXPIRED, UploadSession, UploadSessionRepository
from api.files.slots import StreamHold, StreamSlots
from api.files.validation import UploadRequest, validate_request
from chat4all.clock import utc_now
from chat4all.objectstore import ObjectStore

logger = logging.getLogger(__name__)


class Uploader:
    """Drives upload streams into S3 and keeps their sessions; one per API process.

    Defaults come from settings: ``part_bytes`` 8 MiB (at least 5 MiB, S3's minimum),
    ``parts_in_flight`` 2, ``max_chunk_bytes`` 4 MiB, ``max_file_bytes`` 2 GiB,
    ``session_ttl_seconds`` one day, counted from the last durable byte; per user,
    ``max_streams_per_user`` 4 streams at once (in this process) and ``max_sessions_per_user`` 16
    unfinished sessions; a stream that sends nothing for ``idle_seconds`` (30) is closed.
    ``sessions`` and ``records`` are the Cassandra tables, ``objects`` the S3 bucket.
    """

    def __init__(
        self,
        *,
        sessions: UploadSessionRepository,
        records: FileRecordRepository,
        objects: ObjectStore,
        max_file_bytes: int,
        part_bytes: int,
        max_chunk_bytes: int,
        session_ttl_seconds: int,
        max_streams: int = 32,
        max_streams_per_user: int = 4,
        max_sessions_per_user: int = 16,
        idle_seconds: float = 30.0,
        parts_in_flight: int = 2,
        lock_wait_seconds: float = 30.0,
    ) -> None:
        if part_bytes < 5 * 1024 * 1024:
            raise ValueError("part_bytes must be at least 5 MiB (S3's minimum part size)")
        if parts_in_flight < 1:
            raise ValueError("parts_in_flight must be at least 1")
        self.sessions = sessions
        self.records = records
        self.objects = objects
        self.max_file_bytes = max_file_bytes
        self.part_bytes = part_bytes
        self.parts_in_flight = parts_in_flight
        self.max_chunk_bytes = max_chunk_bytes
        self.session_ttl = timedelta(seconds=session_ttl_seconds)
        self.max_sessions_per_user = max_sessions_per_user
        self.idle_seconds = idle_seconds
        self.slots = StreamSlots(max_streams=max_streams, max_streams_per_user=max_streams_per_user)
        self.hashes = ResumableHashes()
        self._lock_wait = lock_wait_seconds
        # One stream at a time per upload in this process; a resumed stream waits until the
        # cut one has saved its tail. Across processes the session row's conditional writes fence.
        # Keys are (uploader_id, upload_id): upload ids are unique per uploader only.
        self._locks: weakref.WeakValueDictionary[tuple[uuid.UUID, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._background: set[asyncio.Task] = set()

    # --- public --------------------------------------------------------------------------

    def validate(self, req: UploadRequest) -> None:
        """INVALID_ARGUMENT for a FileInfo that cannot be uploaded, before anything is written."""
        validate_request(req, max_file_bytes=self.max_file_bytes)

    async def upload(self, req: UploadRequest, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Receive one stream of an upload (new or resumed) and, once all bytes are in, store the file.

        Raises UploadIncomplete (bytes kept, resume later) if the stream ends early; on
        cancellation (the client went away) the received bytes are saved in the background.
        """
        self.validate(req)
        user = req.uploader_id
        self.slots.take(user)
        key = (user, req.upload_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        hold = StreamHold(slots=self.slots, lock=lock, user=user)
        try:
            await asyncio.wait_for(lock.acquire(), self._lock_wait)
        except TimeoutError:
            hold.give_back()
            raise UploadBusy(f"another stream is still writing upload {req.upload_id}; try again") from None
        except BaseException:
            hold.give_back()
            raise
        release_here = True
        try:
            session = await self._open(req)
            if session.state == COMPLETE:
                return StoredFile(file_id=session.file_id, size=session.size, sha256=session.sha256)
            receiver = Receiver(uploader=self, session=session, file_hash=self.hashes.take(session))
            try:
                # Inside: a long staged tail is cut into parts as it is loaded, and those writes
                # are saved like any other if something fails.
                await receiver.load_tail()
                async for chunk in self._paced(chunks):
                    await receiver.feed(chunk)
            except asyncio.CancelledError:
                # The call was cancelled (client gone, deadline, shutdown): save what arrived in a
                # task of its own, which a second cancellation cannot interrupt.
                release_here = False
                self._spawn(receiver.save(), hold, f"save {req.upload_id}")
                raise
            except TooManyBytes:
                await receiver.abandon()
                await self.discard(session)
                raise
            except StreamIdle:
                release_here = False
                durable = await asyncio.shield(self._spawn(receiver.save(), hold, f"save {req.upload_id}"))
                raise StreamIdle(
                    f"no data for {self.idle_seconds:g} s: stream closed; {durable} bytes of upload "
                    f"{req.upload_id!r} are kept, resume from bytes_received",
                    bytes_received=durable,
                ) from None
            except Exception:
                # A refused chunk, a lost race or an outage: keep what arrived, then answer.
                release_here = False
                await asyncio.shield(self._spawn(receiver.save(), hold, f"save {req.upload_id}"))
                raise
            release_here = False
            if receiver.received < session.size:
                durable = await asyncio.shield(self._spawn(receiver.save(), hold, f"save {req.upload_id}"))
                raise UploadIncomplete(
                    f"stream ended after {durable} of {session.size} bytes; resume with the same upload_id",
                    bytes_received=durable,
                )
            # Assembling a large object takes a while; a client that gives up meanwhile must not
            # leave an object without its metadata, so this too runs in its own task.
            return await asyncio.shield(self._spawn(receiver.finish(), hold, f"finish {req.upload_id}"))
        finally:
            if release_here:
                hold.release()

    async def status(self, *, upload_id: str, caller_id: uuid.UUID) -> UploadSession:
        """The caller's session for GetUploadStatus; NOT_FOUND if it has none of that id or it expired.

        Another user's upload of the same id is another session, and invisible.
        """
        session = await self.sessions.get(uploader_id=caller_id, upload_id=upload_id)
        if session is None or session.state == EXPIRED or (session.state != COMPLETE and session.expired()):
            raise SessionNotFound(f"no upload session {upload_id!r} (unknown or expired)")
        return session

    async def discard(self, session: UploadSession) -> None:
        """Drop everything an unfinished upload wrote: multipart parts, staging objects, the session."""
        if session.s3_upload_id:
            await self.objects.abort_multipart(session.object_key, s3_upload_id=session.s3_upload_id)
        await self.objects.delete_prefix(session.staging_prefix)
        await self.sessions.delete(session)
        self.hashes.forget(session)
        logger.info("discarded upload %s (%d bytes received)", session.upload_id, session.bytes_received)

    def is_streaming(self, session: UploadSession) -> bool:
        """Whether a stream of this process is writing the session right now."""
        lock = self._locks.get(session.key)
        return lock is not None and lock.locked()

    async def drain(self) -> None:
        """Wait for background saves and finishes (graceful shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- internals -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], hold: StreamHold, what: str) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)

        def done(t: asyncio.Task) -> None:
            self._background.discard(t)
            hold.release()
            if not t.cancelled() and t.exception() is not None and not isinstance(t.exception(), UploadError):
                logger.warning("%s failed: %s: %s", what, type(t.exception()).__name__, t.exception())

        task.add_done_callback(done)
        return task

    async def _paced(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The stream's chunks; StreamIdle if the client sends nothing for ``idle_seconds``."""
        it = aiter(chunks)
        while True:
            try:
                async with asyncio.timeout(self.idle_seconds):
                    chunk = await anext(it)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise StreamIdle(f"no data for {self.idle_seconds:g} s") from None
            yield chunk

    async def _open(self, req: UploadRequest) -> UploadSession:
        now = utc_now()
        session = await self.sessions.get(uploader_id=req.uploader_id, upload_id=req.upload_id)
        if session is not None and session.state == COMPLETE and session.expired(now):
            await self.sessions.delete(session)
            session = None
        if session is not None and (session.state == EXPIRED or session.expired(now)):
            if session.state == EXPIRED or await self.sessions.mark_expired(session):
                await self.discard(session)
            raise SessionExpired(
                f"upload session {req.upload_id!r} expired; start again with a new upload_id"
            )
        if session is None:
            await self._check_open_sessions(req.uploader_id, now)
            file_id = uuid.uuid4()
            candidate = UploadSession(
                upload_id=req.upload_id,
                uploader_id=req.uploader_id,
                conversation_id=req.conversation_id,
                file_id=file_id,
                filename=req.filename,
                mime_type=req.mime_type or "application/octet-stream",
                size=req.size,
                sha256=req.sha256,
                object_key=f"{now:%Y/%m/%d}/{file_id}",
                created_at=now,
                expires_at=now + self.session_ttl,
            )
            if await self.sessions.create(candidate):
                logger.info("upload %s started: file %s, %d bytes", req.upload_id, file_id, req.size)
                session = candidate
            else:
                session = await self.sessions.get(uploader_id=req.uploader_id, upload_id=req.upload_id)
                if session is None:
                    raise UploadBusy(f"upload {req.upload_id!r} changed meanwhile; try again")
        if (session.conversation_id, session.size, session.sha256) != (
            req.conversation_id,
            req.size,
            req.sha256,
        ):
            raise InvalidUpload(
                f"upload_id {req.upload_id!r} was started for another file (conversation, size or sha256 differ)"
            )
        if session.state != COMPLETE and req.offset is not None and req.offset != session.bytes_received:
            raise OffsetMismatch(
                f"the server holds {session.bytes_received} bytes of this upload; send chunks from there, not {req.offset}",
                bytes_received=session.bytes_received,
            )
        return session

    async def _check_open_sessions(self, uploader_id: uuid.UUID, now: datetime) -> None:
        """RESOURCE_EXHAUSTED if the uploader already holds ``max_sessions_per_user`` unfinished sessions.

        Checked before the new session's insert: new sessions of one user starting at the same
        moment (at most ``max_streams_per_user`` per API process) may each pass the check, so
        the count can exceed the limit by that many, no more.
        """
        open_until = await self.sessions.open_sessions(uploader_id, now=now)
        if len(open_until) >= self.max_sessions_per_user:
            wait = (min(open_until) - now).total_seconds()
            raise TooManyStreams(
                f"you have {len(open_until)} unfinished uploads (the limit is {self.max_sessions_per_user}); "
                "finish one of them, or wait until one expires, before starting another",
                retry_after=max(1.0, wait),
            )
