"""Receives upload streams into S3 multipart uploads: resumable, checksummed, in bounded memory.

Where an upload's bytes are, at any time (offsets in the file):

    [0, parts_bytes)                 S3 parts of the multipart upload, recorded in the session row
    [parts_bytes, bytes_received)    the tail, in the staging object staging/<file_id>/<parts_bytes>
    [bytes_received, received)       memory of the API process handling the stream (not durable)

A part (``upload_part_bytes``, 8 MiB by default) is cut as soon as that much is buffered and
written while the next chunks keep arriving, up to ``parts_in_flight`` (2) parts at once; the
session row records parts in file order, and memory per stream stays within
``parts_in_flight + 1`` part buffers. When a stream is cut or ends early, the buffered bytes
(below S3's 5 MiB minimum part size or not) go to the staging object, so every received byte
stays; a resumed stream reads the tail back and goes on.
A process that dies without that chance (SIGKILL) loses only what was in its memory:
``bytes_received`` never counts such bytes.

The SHA-256 is computed while streaming, one part at a time in a worker thread (hashlib
releases the GIL), in file order. Python's hash state cannot be serialized, so a stream
resumed in the process that saw the earlier bytes continues the same hash object; a stream
resumed elsewhere (after an API restart, or on another replica) re-reads the stored object once
it is assembled and hashes that. A mismatch either way fails with DATA_LOSS and leaves no
object, no staging data and no metadata.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from minio.error import S3Error

from api.files.records import FileRecord, FileRecordStore
from api.files.sessions import (
    COMPLETE,
    EXPIRED,
    SessionConflict,
    UploadSession,
    UploadSessionStore,
)
from chat4all.clock import utc_now
from chat4all.objectstore import ObjectStore, is_missing

logger = logging.getLogger(__name__)

MAX_UPLOAD_ID = 128
MAX_FILENAME = 255
MAX_MIME_TYPE = 255
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class UploadError(Exception):
    """An upload refused; ``code`` names the gRPC status (the servicer maps it)."""

    code = "INTERNAL"

    def __init__(self, message: str, *, bytes_received: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.bytes_received = bytes_received
        self.retry_after = retry_after  # seconds, for RESOURCE_EXHAUSTED


class InvalidUpload(UploadError):
    code = "INVALID_ARGUMENT"


class ChecksumMismatch(UploadError):
    code = "DATA_LOSS"


class UploadIncomplete(UploadError):
    code = "ABORTED"


class UploadBusy(UploadError):
    code = "ABORTED"


class OffsetMismatch(UploadError):
    code = "FAILED_PRECONDITION"


class SessionExpired(UploadError):
    code = "FAILED_PRECONDITION"


class SessionNotFound(UploadError):
    code = "NOT_FOUND"


class TooManyStreams(UploadError):
    """The process's or the user's stream slots are taken, or the user holds too many open sessions."""

    code = "RESOURCE_EXHAUSTED"


class StreamIdle(UploadError):
    """The client sent nothing for ``idle_seconds``: the stream is closed, its bytes kept."""

    code = "ABORTED"


# How long a client refused for lack of a stream slot waits: slots free as streams end, or
# within the idle timeout for a stream that stalls.
STREAM_RETRY_SECONDS = 2.0


@dataclass(frozen=True, kw_only=True)
class UploadRequest:
    """The first message of an upload stream, with the authenticated caller."""

    uploader_id: uuid.UUID
    conversation_id: uuid.UUID
    filename: str
    mime_type: str
    size: int
    sha256: str
    upload_id: str
    offset: int | None = None


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    file_id: uuid.UUID
    size: int
    sha256: str


class Uploader:
    """Drives upload streams into S3 and keeps their sessions; one per API process.

    Defaults come from settings: ``part_bytes`` 8 MiB (at least 5 MiB, S3's minimum),
    ``parts_in_flight`` 2, ``max_chunk_bytes`` 4 MiB, ``max_file_bytes`` 2 GiB,
    ``session_ttl_seconds`` one day, counted from the last durable byte; per user,
    ``max_streams_per_user`` 4 streams at once (in this process) and ``max_sessions_per_user`` 16
    unfinished sessions; a stream that sends nothing for ``idle_seconds`` (30) is closed.
    """

    def __init__(
        self,
        *,
        sessions: UploadSessionStore,
        files: FileRecordStore,
        store: ObjectStore,
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
        self.files = files
        self.store = store
        self.max_file_bytes = max_file_bytes
        self.part_bytes = part_bytes
        self.parts_in_flight = parts_in_flight
        self.max_chunk_bytes = max_chunk_bytes
        self.session_ttl = timedelta(seconds=session_ttl_seconds)
        self._lock_wait = lock_wait_seconds
        # Each stream buffers up to parts_in_flight + 1 parts: a cap keeps the process's memory predictable.
        self.max_streams = max_streams
        self.active_streams = 0
        # Per user as well, so that one user's (idle) streams cannot take every slot.
        self.max_streams_per_user = max_streams_per_user
        self.streams_of: dict[uuid.UUID, int] = {}
        self.max_sessions_per_user = max_sessions_per_user
        self.idle_seconds = idle_seconds
        # One stream at a time per upload in this process; a resumed stream waits until the
        # cut one has saved its tail. Across processes the session row's conditional writes fence.
        # Keys are (uploader_id, upload_id): upload ids are unique per uploader only.
        self._locks: weakref.WeakValueDictionary[tuple[uuid.UUID, str], asyncio.Lock] = weakref.WeakValueDictionary()
        # (uploader_id, upload_id) -> (offset, hash of bytes [0, offset)) of streams cut in this process.
        self._hashes: dict[tuple[uuid.UUID, str], tuple[int, object]] = {}
        self._background: set[asyncio.Task] = set()

    # --- public --------------------------------------------------------------------------

    def validate(self, req: UploadRequest) -> None:
        """INVALID_ARGUMENT for a FileInfo that cannot be uploaded, before anything is written."""
        if not req.upload_id or len(req.upload_id) > MAX_UPLOAD_ID or not req.upload_id.isprintable():
            raise InvalidUpload(f"upload_id must be 1 to {MAX_UPLOAD_ID} printable characters")
        if req.size < 0:
            raise InvalidUpload("size must not be negative")
        if req.size > self.max_file_bytes:
            raise InvalidUpload(f"size {req.size} is over the limit of {self.max_file_bytes} bytes")
        if not _SHA256_HEX.match(req.sha256):
            raise InvalidUpload("sha256 must be 64 lowercase hex characters")
        # Printable only: the name goes into the download's Content-Disposition header.
        if not req.filename.strip() or len(req.filename) > MAX_FILENAME or "/" in req.filename or not req.filename.isprintable():
            raise InvalidUpload(f"filename must be 1 to {MAX_FILENAME} printable characters, without '/'")
        if len(req.mime_type) > MAX_MIME_TYPE or not req.mime_type.isprintable():
            raise InvalidUpload(f"mime_type must be at most {MAX_MIME_TYPE} printable characters")
        if req.offset is not None and req.offset < 0:
            raise InvalidUpload("offset must not be negative")

    async def upload(self, req: UploadRequest, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Receive one stream of an upload (new or resumed) and, once all bytes are in, store the file.

        Raises UploadIncomplete (bytes kept, resume later) if the stream ends early; on
        cancellation (the client went away) the received bytes are saved in the background.
        """
        self.validate(req)
        if self.active_streams >= self.max_streams:
            raise TooManyStreams(
                f"this server is receiving {self.max_streams} uploads already; retry in a few seconds",
                retry_after=STREAM_RETRY_SECONDS,
            )
        user = req.uploader_id
        if self.streams_of.get(user, 0) >= self.max_streams_per_user:
            raise TooManyStreams(
                f"you have {self.max_streams_per_user} upload streams open on this server already (the limit); "
                "retry once one of them ends",
                retry_after=STREAM_RETRY_SECONDS,
            )
        key = (user, req.upload_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        hold = _Hold(self, lock, user)
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
            rx = _Receiver(uploader=self, session=session, sha=self._take_hash(session))
            try:
                # Inside: a long staged tail is cut into parts as it is loaded, and those writes
                # are saved like any other if something fails.
                await rx.load_tail()
                async for chunk in self._paced(chunks):
                    await rx.feed(chunk)
            except asyncio.CancelledError:
                # The call was cancelled (client gone, deadline, shutdown): save what arrived in a
                # task of its own, which a second cancellation cannot interrupt.
                release_here = False
                self._spawn(rx.save(), hold, f"save {req.upload_id}")
                raise
            except TooManyBytes:
                await rx.abandon()
                await self.discard(session)
                raise
            except StreamIdle:
                release_here = False
                durable = await asyncio.shield(self._spawn(rx.save(), hold, f"save {req.upload_id}"))
                raise StreamIdle(
                    f"no data for {self.idle_seconds:g} s: stream closed; {durable} bytes of upload "
                    f"{req.upload_id!r} are kept, resume from bytes_received",
                    bytes_received=durable,
                ) from None
            except Exception:
                # A refused chunk, a lost race or an outage: keep what arrived, then answer.
                release_here = False
                await asyncio.shield(self._spawn(rx.save(), hold, f"save {req.upload_id}"))
                raise
            release_here = False
            if rx.received < session.size:
                durable = await asyncio.shield(self._spawn(rx.save(), hold, f"save {req.upload_id}"))
                raise UploadIncomplete(
                    f"stream ended after {durable} of {session.size} bytes; resume with the same upload_id",
                    bytes_received=durable,
                )
            # Assembling a large object takes a while; a client that gives up meanwhile must not
            # leave an object without its metadata, so this too runs in its own task.
            return await asyncio.shield(self._spawn(rx.finish(), hold, f"finish {req.upload_id}"))
        finally:
            if release_here:
                hold.release()

    async def status(self, *, upload_id: str, caller_id: uuid.UUID) -> UploadSession:
        """The caller's session for GetUploadStatus; NOT_FOUND if the caller has none of that id or it expired
        (another user's upload of the same id is another session, and invisible)."""
        session = await self.sessions.get(caller_id, upload_id)
        if session is None or session.state == EXPIRED or (session.state != COMPLETE and session.expired()):
            raise SessionNotFound(f"no upload session {upload_id!r} (unknown or expired)")
        return session

    async def discard(self, session: UploadSession) -> None:
        """Drop everything an unfinished upload wrote: multipart parts, staging objects, the session."""
        if session.s3_upload_id:
            await self.store.abort_multipart(session.object_key, s3_upload_id=session.s3_upload_id)
        await self.store.delete_prefix(session.staging_prefix)
        await self.sessions.delete(session)
        self._hashes.pop(session.key, None)
        logger.info("discarded upload %s (%d bytes received)", session.upload_id, session.bytes_received)

    async def cleanup_expired(self) -> int:
        """Abort expired sessions' multipart uploads, delete their staging data and rows; returns how many."""
        now = utc_now()
        cleaned = 0
        async for page in self.sessions.scan():  # a page at a time, never the whole table
            for session in page:
                if session.state == COMPLETE:
                    if session.expired(now):
                        await self.sessions.delete(session)
                        cleaned += 1
                    continue
                if session.state != EXPIRED:
                    if not session.expired(now):
                        continue
                    lock = self._locks.get(session.key)
                    if lock is not None and lock.locked():
                        continue  # a stream is on it right now
                    # The conditional write loses if a stream extended the session meanwhile.
                    if not await self.sessions.mark_expired(session):
                        continue
                await self.discard(session)
                cleaned += 1
        return cleaned

    async def run_cleaner(self, interval_seconds: float) -> None:
        """Run ``cleanup_expired`` every ``interval_seconds`` until cancelled; errors are logged, not fatal."""
        while True:
            try:
                cleaned = await self.cleanup_expired()
                if cleaned:
                    logger.info("cleaned up %d expired upload sessions", cleaned)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage: try again next round
                logger.warning("upload clean-up failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(interval_seconds)

    async def drain(self) -> None:
        """Wait for background saves and finishes (graceful shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- internals -----------------------------------------------------------------------

    def _spawn(self, coro, hold: _Hold, what: str) -> asyncio.Task:  # noqa: ANN001 - a coroutine
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

    def _take_hash(self, session: UploadSession):  # noqa: ANN202 - hashlib object
        cached = self._hashes.pop(session.key, None)
        if session.bytes_received == 0:
            return hashlib.sha256()
        if cached is not None and cached[0] == session.bytes_received:
            return cached[1]
        return None  # verified by reading the assembled object back

    async def _open(self, req: UploadRequest) -> UploadSession:
        now = utc_now()
        session = await self.sessions.get(req.uploader_id, req.upload_id)
        if session is not None and session.state == COMPLETE and session.expired(now):
            await self.sessions.delete(session)
            session = None
        if session is not None and (session.state == EXPIRED or session.expired(now)):
            if session.state == EXPIRED or await self.sessions.mark_expired(session):
                await self.discard(session)
            raise SessionExpired(f"upload session {req.upload_id!r} expired; start again with a new upload_id")
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
                session = await self.sessions.get(req.uploader_id, req.upload_id)
                if session is None:
                    raise UploadBusy(f"upload {req.upload_id!r} changed meanwhile; try again")
        if (session.conversation_id, session.size, session.sha256) != (req.conversation_id, req.size, req.sha256):
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


class _Hold:
    """What one stream holds until it and its background save or finish are done: its upload's
    lock and a stream slot (of the process and of its user). Released exactly once."""

    def __init__(self, uploader: Uploader, lock: asyncio.Lock, user: uuid.UUID) -> None:
        self._uploader = uploader
        self._lock = lock
        self._user = user
        self._released = False
        uploader.active_streams += 1
        uploader.streams_of[user] = uploader.streams_of.get(user, 0) + 1

    def give_back(self) -> None:
        """The slots only (the lock was never acquired)."""
        if not self._released:
            self._released = True
            self._free_slots()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._lock.release()
            self._free_slots()

    def _free_slots(self) -> None:
        up = self._uploader
        up.active_streams -= 1
        left = up.streams_of.get(self._user, 1) - 1
        if left > 0:
            up.streams_of[self._user] = left
        else:
            up.streams_of.pop(self._user, None)


class TooManyBytes(InvalidUpload):
    """More bytes than the declared size: the file cannot be the declared one."""


class _PartWrite:
    """A part cut from the stream on its way to S3; its buffer stays here until the row records it."""

    __slots__ = ("buffer", "data", "hashed", "task")

    def __init__(self, buffer: bytearray, data: memoryview, hashed: asyncio.Task | None, task: asyncio.Task) -> None:
        self.buffer, self.data, self.hashed, self.task = buffer, data, hashed, task


class _Receiver:
    """One stream's bytes on their way to S3 (see the module docstring for where they are)."""

    def __init__(self, *, uploader: Uploader, session: UploadSession, sha) -> None:  # noqa: ANN001
        self.up = uploader
        self.s = session
        self.sha = sha
        # Chunks are copied into a part-sized buffer, which is handed to the S3 call as it is
        # (a memoryview, no join). Buffers are reused once their part is recorded, so a stream
        # allocates (and the OS zero-fills) at most parts_in_flight + 1 of them, whatever the size.
        # ``received`` is the file offset after the buffered bytes; load_tail() brings the staged
        # tail back, so it starts after the recorded parts.
        self._spare: list[bytearray] = []
        self.received = session.parts_bytes
        self.buf = self._buffer(self.received)
        self.fill = 0
        # Parts cut and not yet known to be recorded, oldest first; numbered at the cut.
        self.inflight: deque[_PartWrite] = deque()
        self.next_number = len(session.parts) + 1
        # Bytes of parts that failed (in order), after the recorded ones and before ``buf``:
        # only save() follows, and stages them with the buffer.
        self.unrecorded: list[memoryview] = []
        self._multipart: asyncio.Task | None = None
        # The hash is fed in file order by a chain of tasks; ``hashed`` is the offset it will
        # cover once they are done.
        self.hashed = session.bytes_received
        self._hash_job: asyncio.Task | None = None

    def _buffer(self, start: int) -> bytearray:
        """A buffer for the part that starts at file offset ``start`` (the last one may be shorter)."""
        need = min(self.up.part_bytes, self.s.size - start)
        for i, spare in enumerate(self._spare):
            if len(spare) >= need:
                return self._spare.pop(i)
        return bytearray(need)

    async def load_tail(self) -> None:
        """Put the staged tail back in front of the buffer, so that it ends up in the next part."""
        if self.s.tail_bytes:
            data = await self.up.store.read(self.s.tail_key, length=self.s.tail_bytes)
            await self._append(memoryview(data))

    async def feed(self, chunk: bytes | memoryview) -> None:
        n = len(chunk)
        if n > self.up.max_chunk_bytes:
            raise InvalidUpload(f"chunk of {n} bytes is over the limit of {self.up.max_chunk_bytes}")
        if self.received + n > self.s.size:
            raise TooManyBytes(f"more bytes than the declared size {self.s.size}; upload discarded")
        if n:
            await self._append(memoryview(chunk))

    async def _append(self, data: memoryview) -> None:
        # A chunk may straddle two parts: parts are exactly part_bytes long, except the last.
        assert not self.unrecorded, "nothing is received after a part failed"
        while data:
            take = min(len(self.buf) - self.fill, len(data))
            if not take:  # the last part is full: feed() let through more than the declared size
                raise TooManyBytes(f"more bytes than the declared size {self.s.size}; upload discarded")
            self.buf[self.fill:self.fill + take] = data[:take]
            self.fill += take
            self.received += take  # counted as it is buffered: a cancelled cut drops only the rest
            data = data[take:]
            if self.fill == self.up.part_bytes:
                await self._cut()

    # --- hashing ---------------------------------------------------------------------------

    def _hash(self, data: memoryview, start: int) -> asyncio.Task | None:
        """Feed the bytes of ``data`` (which starts at file offset ``start``) not hashed yet, after the earlier ones."""
        if self.sha is None:
            return None
        skip = self.hashed - start
        if skip < 0:  # a gap: cannot happen, but then the hash would be wrong
            self.sha = None
            return None
        if skip >= len(data):
            return None
        self.hashed = start + len(data)
        self._hash_job = asyncio.create_task(self._hash_after(self._hash_job, data[skip:]))
        return self._hash_job

    async def _hash_after(self, previous: asyncio.Task | None, data: memoryview) -> None:
        sha = self.sha
        try:
            if previous is not None:
                await asyncio.wait([previous])
            if self.sha is None:
                return
            await asyncio.to_thread(sha.update, data)
        except asyncio.CancelledError:
            # The thread may still be feeding: the hash no longer says which bytes it covers,
            # so a resume verifies by re-reading instead.
            self.sha = None
            raise

    async def _hashed_all(self) -> None:
        """Hash what is buffered too, and wait until the hash covers every received byte."""
        self._hash(memoryview(self.buf)[:self.fill], self.received - self.fill)
        if self._hash_job is not None:
            await asyncio.wait([self._hash_job])
        if self.hashed != self.received:
            self.sha = None

    # --- parts -----------------------------------------------------------------------------

    async def _cut(self) -> None:
        # Up to parts_in_flight parts upload while the next one fills.
        while len(self.inflight) >= self.up.parts_in_flight:
            oldest = self.inflight[0]
            try:
                # Shielded: if this call is cancelled, save() still finds the part in flight.
                await asyncio.shield(oldest.task)
            except asyncio.CancelledError:
                raise
            except Exception:
                await self._settle()  # keeps the unrecorded bytes for save() and raises
            self.inflight.popleft()
            if oldest.hashed is None or oldest.hashed.done():
                self._spare.append(oldest.buffer)  # nothing reads it any more
        # No await from here on: the bytes are either in the buffer or in a part in flight.
        buffer, data = self.buf, memoryview(self.buf)[:self.fill]
        start = self.received - self.fill
        self.buf, self.fill = self._buffer(self.received), 0
        hashed = self._hash(data, start)
        number = self.next_number
        self.next_number += 1
        previous = self.inflight[-1].task if self.inflight else None
        task = asyncio.create_task(self._write_part(number, data, previous))
        self.inflight.append(_PartWrite(buffer, data, hashed, task))

    async def _start_multipart(self) -> None:
        s, store = self.s, self.up.store
        s3_upload_id = await store.create_multipart(s.object_key, content_type=s.mime_type)
        try:
            await self.up.sessions.set_s3_upload(s, s3_upload_id)
        except BaseException:
            await store.abort_multipart(s.object_key, s3_upload_id=s3_upload_id)
            raise

    async def _write_part(self, number: int, data: memoryview, previous: asyncio.Task | None) -> None:
        s = self.s
        if s.s3_upload_id is None:
            if self._multipart is None:
                self._multipart = asyncio.create_task(self._start_multipart())
            await self._multipart
        etag = await self.up.store.upload_part(s.object_key, s3_upload_id=s.s3_upload_id, part_number=number, data=data)
        if previous is not None:
            # Parts are recorded in order: one whose predecessor failed stays unrecorded (its
            # S3 part is replaced when the resumed stream writes that number again).
            await previous
        await self.up.sessions.commit_part(s, (number, etag, len(data)), expires_at=utc_now() + self.up.session_ttl)

    async def _settle(self) -> None:
        """Wait for every part in flight. If one failed, its bytes and those of the parts after it
        (none of them is recorded) are kept for save(), and its error is raised."""
        if not self.inflight:
            return
        await asyncio.wait([w.task for w in self.inflight])
        error: BaseException | None = None
        for w in self.inflight:
            failure = asyncio.CancelledError() if w.task.cancelled() else w.task.exception()
            if failure is None and error is None:
                continue
            error = error or failure
            self.unrecorded.append(w.data)
        self.inflight.clear()
        if error is not None:
            self.next_number = len(self.s.parts) + 1
            raise error

    def _tail(self) -> list[memoryview]:
        """The received bytes after the recorded parts, in order."""
        return [*self.unrecorded, memoryview(self.buf)[:self.fill]]

    async def abandon(self) -> None:
        """Wait for the parts in flight, ignoring their outcome (the upload is being discarded)."""
        try:
            await self._settle()
        except Exception as exc:
            logger.debug("upload %s: part in flight failed while discarding: %s", self.s.upload_id, exc)

    async def save(self) -> int:
        """Make every received byte durable (parts, then the staging tail); returns bytes_received."""
        s = self.s
        try:
            await self._settle()
        except SessionConflict:
            return s.bytes_received  # another stream owns the session now: write nothing
        except Exception as exc:
            logger.warning("upload %s: part write failed (%s); staging its bytes instead", s.upload_id, exc)
        tail = self._tail()
        size = sum(len(t) for t in tail)
        if size > s.tail_bytes:
            data = tail[0] if len(tail) == 1 else bytearray().join(tail)
            # Same key as the tail read back at the start: the new tail extends it, and the
            # row's tail_bytes says how much of it counts, so a crash between the two writes is safe.
            await self.up.store.put(s.tail_key, data)
            await self.up.sessions.commit_tail(s, size, expires_at=utc_now() + self.up.session_ttl)
            logger.info("upload %s: %d bytes durable (%d in the staged tail)", s.upload_id, s.bytes_received, size)
        if self.sha is not None:
            await self._hashed_all()
            if self.sha is not None and self.hashed == s.bytes_received:
                self.up._hashes[s.key] = (s.bytes_received, self.sha)
        return s.bytes_received

    async def _assemble(self) -> None:
        s, store = self.s, self.up.store
        data = memoryview(self.buf)[:self.fill]
        if s.s3_upload_id is None:
            # Smaller than one part: a single PUT, no multipart needed.
            await store.put(s.object_key, data, content_type=s.mime_type)
            return
        parts = [(n, etag) for n, etag, _ in s.parts]
        if data:
            number = len(parts) + 1  # == next_number: every part cut is recorded by now
            etag = await store.upload_part(s.object_key, s3_upload_id=s.s3_upload_id, part_number=number, data=data)
            parts.append((number, etag))
        await store.complete_multipart(s.object_key, s3_upload_id=s.s3_upload_id, parts=parts)

    async def finish(self) -> StoredFile:
        """All bytes are in: check the checksum, assemble the object, write the metadata."""
        s, store = self.s, self.up.store
        try:
            await self._settle()
        except SessionConflict:
            raise UploadBusy(f"another stream took over upload {s.upload_id}") from None
        except Exception:
            await self.save()
            raise
        if self.sha is not None:
            await self._hashed_all()
        if self.sha is not None and self.sha.hexdigest() != s.sha256:
            await self.up.discard(s)
            raise ChecksumMismatch(f"SHA-256 of the received bytes is {self.sha.hexdigest()}, not {s.sha256}; upload discarded")
        try:
            await self._assemble()
        except S3Error as exc:
            # An earlier finish may have assembled the object and died before its metadata.
            if not (is_missing(exc) and await store.size_of(s.object_key) == s.size):
                await self.save()
                raise
            self.sha = None  # so verify what is stored
        except Exception:
            await self.save()
            raise
        self.fill = 0
        if self.sha is None:
            # This process did not see every byte (resumed after a restart): hash what is stored.
            logger.info("upload %s: verifying the checksum by re-reading the stored object", s.upload_id)
            digest = await store.sha256_of(s.object_key)
            if digest != s.sha256:
                await store.delete(s.object_key)
                s.s3_upload_id = None  # completed: nothing left to abort
                await self.up.discard(s)
                raise ChecksumMismatch(f"SHA-256 of the stored object is {digest}, not {s.sha256}; upload discarded")
        created = utc_now()
        await self.up.files.insert(
            FileRecord(
                file_id=s.file_id,
                conversation_id=s.conversation_id,
                uploader_id=s.uploader_id,
                filename=s.filename,
                mime_type=s.mime_type,
                size=s.size,
                sha256=s.sha256,
                bucket=store.bucket,
                object_key=s.object_key,
                created_at=created,
            )
        )
        await self.up.sessions.mark_complete(s)
        self.up._hashes.pop(s.key, None)
        try:
            await store.delete_prefix(s.staging_prefix)
        except Exception as exc:  # only garbage left behind; the cleaner does not need it
            logger.warning("upload %s: staging clean-up failed: %s", s.upload_id, exc)
        logger.info("upload %s complete: file %s, %d bytes", s.upload_id, s.file_id, s.size)
        return StoredFile(file_id=s.file_id, size=s.size, sha256=s.sha256)
