"""One upload stream's bytes on their way to S3: part buffers, parts in flight, the staged tail, the finish.

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

The SHA-256 is computed while streaming (api.files.hashing), one part at a time, in file order.
A stream resumed in the process that saw the earlier bytes continues the same hash; a stream
resumed elsewhere (after an API restart, or on another replica) re-reads the stored object once
it is assembled and hashes that. A mismatch either way fails with DATA_LOSS and leaves no
object, no staging data and no metadata.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minio.error import S3Error

from api.files.errors import ChecksumMismatch, InvalidUpload, SessionConflict, TooManyBytes, UploadBusy
from api.files.hashing import StreamHash
from api.files.parts import PartWrites
from api.files.records import FileRecord
from api.files.sessions import UploadSession
from chat4all.clock import utc_now
from chat4all.objectstore import is_missing

if TYPE_CHECKING:
    from api.files.upload_context import UploadContext

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    """A complete, checked upload: what UploadFile answers."""

    file_id: uuid.UUID
    size: int
    sha256: str


class Receiver:
    """One stream's bytes on their way to S3, for the uploader that opened the session."""

    def __init__(self, *, uploader: UploadContext, session: UploadSession, file_hash: StreamHash) -> None:
        self._uploader = uploader
        self._session = session
        self._hash = file_hash
        self._parts = PartWrites(uploader=uploader, session=session)
        # Chunks are copied into a part-sized buffer, which is handed to the S3 call as it is
        # (a memoryview, no join). ``received`` is the file offset after the buffered bytes;
        # load_tail() brings the staged tail back, so it starts after the recorded parts.
        self.received = session.parts_bytes
        self._buffer = self._parts.new_buffer(self.received)
        self._buffered = 0  # bytes of _buffer in use

    def _buffered_view(self) -> memoryview:
        return memoryview(self._buffer)[: self._buffered]

    async def load_tail(self) -> None:
        """Put the staged tail back in front of the buffer, so that it ends up in the next part."""
        session = self._session
        if session.tail_bytes:
            data = await self._uploader.objects.read(session.tail_key, length=session.tail_bytes)
            await self._append(memoryview(data))

    async def feed(self, chunk: bytes | memoryview) -> None:
        """Take one chunk of the stream; InvalidUpload if it is too large, TooManyBytes past the declared size."""
        n = len(chunk)
        if n > self._uploader.max_chunk_bytes:
            raise InvalidUpload(f"chunk of {n} bytes is over the limit of {self._uploader.max_chunk_bytes}")
        if self.received + n > self._session.size:
            raise TooManyBytes(f"more bytes than the declared size {self._session.size}; upload discarded")
        if n:
            await self._append(memoryview(chunk))

    async def _append(self, data: memoryview) -> None:
        # A chunk may straddle two parts: parts are exactly part_bytes long, except the last.
        assert not self._parts.unrecorded, "nothing is received after a part failed"
        while data:
            take = min(len(self._buffer) - self._buffered, len(data))
            if not take:  # the last part is full: feed() let through more than the declared size
                raise TooManyBytes(
                    f"more bytes than the declared size {self._session.size}; upload discarded"
                )
            self._buffer[self._buffered : self._buffered + take] = data[:take]
            self._buffered += take
            self.received += take  # counted as it is buffered: a cancelled cut drops only the rest
            data = data[take:]
            if self._buffered == self._uploader.part_bytes:
                await self._cut()

    async def _hash_everything(self) -> None:
        """Hash what is buffered too, and wait until the hash covers every received byte."""
        self._hash.feed(self._buffered_view(), start=self.received - self._buffered)
        await self._hash.settle(received=self.received)

    # --- parts -----------------------------------------------------------------------------

    async def _cut(self) -> None:
        # Up to parts_in_flight parts upload while the next one fills.
        await self._parts.make_room()
        # No await from here on: the bytes are either in the buffer or in a part in flight.
        buffer, data = self._buffer, self._buffered_view()
        start = self.received - self._buffered
        self._buffer, self._buffered = self._parts.new_buffer(self.received), 0
        hashing = self._hash.feed(data, start=start)
        self._parts.write(buffer=buffer, data=data, hashing=hashing)

    def _tail(self) -> list[memoryview]:
        """The received bytes after the recorded parts, in order."""
        return [*self._parts.unrecorded, self._buffered_view()]

    # --- endings ---------------------------------------------------------------------------

    async def abandon(self) -> None:
        """Wait for the parts in flight, ignoring their outcome (the upload is being discarded)."""
        try:
            await self._parts.settle()
        except Exception as exc:
            logger.debug(
                "upload %s: part in flight failed while discarding: %s", self._session.upload_id, exc
            )

    async def save(self) -> int:
        """Make every received byte durable (parts, then the staging tail); returns bytes_received."""
        session = self._session
        try:
            await self._parts.settle()
        except SessionConflict:
            return session.bytes_received  # another stream owns the session now: write nothing
        except Exception as exc:
            logger.warning(
                "upload %s: part write failed (%s); staging its bytes instead", session.upload_id, exc
            )
        tail = self._tail()
        size = sum(len(t) for t in tail)
        if size > session.tail_bytes:
            data = tail[0] if len(tail) == 1 else bytearray().join(tail)
            # Same key as the tail read back at the start: the new tail extends it, and the
            # row's tail_bytes says how much of it counts, so a crash between the two writes is safe.
            await self._uploader.objects.put(session.tail_key, data)
            await self._uploader.sessions.commit_tail(
                session, tail_bytes=size, expires_at=utc_now() + self._uploader.session_ttl
            )
            logger.info(
                "upload %s: %d bytes durable (%d in the staged tail)",
                session.upload_id,
                session.bytes_received,
                size,
            )
        if self._hash.known:
            await self._hash_everything()
            self._uploader.hashes.keep(session, self._hash)
        return session.bytes_received

    async def _assemble(self) -> None:
        session, objects = self._session, self._uploader.objects
        data = self._buffered_view()
        if session.s3_upload_id is None:
            # Smaller than one part: a single PUT, no multipart needed.
            await objects.put(session.object_key, data, content_type=session.mime_type)
            return
        parts = [(part.number, part.etag) for part in session.parts]
        if data:
            number = len(parts) + 1  # every part cut is recorded by now
            etag = await objects.upload_part(
                session.object_key, s3_upload_id=session.s3_upload_id, part_number=number, data=data
            )
            parts.append((number, etag))
        await objects.complete_multipart(session.object_key, s3_upload_id=session.s3_upload_id, parts=parts)

    async def finish(self) -> StoredFile:
        """All bytes are in: check the checksum, assemble the object, write the metadata."""
        session, objects, uploader = self._session, self._uploader.objects, self._uploader
        try:
            await self._parts.settle()
        except SessionConflict:
            raise UploadBusy(f"another stream took over upload {session.upload_id}") from None
        except Exception:
            await self.save()
            raise
        if self._hash.known:
            await self._hash_everything()
        if self._hash.known and self._hash.hexdigest() != session.sha256:
            digest = self._hash.hexdigest()
            await uploader.discard(session)
            raise ChecksumMismatch(
                f"SHA-256 of the received bytes is {digest}, not {session.sha256}; upload discarded"
            )
        try:
            await self._assemble()
        except S3Error as exc:
            # An earlier finish may have assembled the object and died before its metadata.
            if not (is_missing(exc) and await objects.size_of(session.object_key) == session.size):
                await self.save()
                raise
            self._hash.forget()  # so verify what is stored
        except Exception:
            await self.save()
            raise
        self._buffered = 0
        if not self._hash.known:
            # This process did not see every byte (resumed after a restart): hash what is stored.
            logger.info(
                "upload %s: verifying the checksum by re-reading the stored object", session.upload_id
            )
            digest = await objects.sha256_of(session.object_key)
            if digest != session.sha256:
                await objects.delete(session.object_key)
                session.s3_upload_id = None  # completed: nothing left to abort
                await uploader.discard(session)
                raise ChecksumMismatch(
                    f"SHA-256 of the stored object is {digest}, not {session.sha256}; upload discarded"
                )
        await uploader.records.insert(
            FileRecord(
                file_id=session.file_id,
                conversation_id=session.conversation_id,
                uploader_id=session.uploader_id,
                filename=session.filename,
                mime_type=session.mime_type,
                size=session.size,
                sha256=session.sha256,
                bucket=objects.bucket,
                object_key=session.object_key,
                created_at=utc_now(),
            )
        )
        await uploader.sessions.mark_complete(session)
        uploader.hashes.forget(session)
        try:
            await objects.delete_prefix(session.staging_prefix)
        except Exception as exc:  # only garbage left behind; the cleaner does not need it
            logger.warning("upload %s: staging clean-up failed: %s", session.upload_id, exc)
        logger.info("upload %s complete: file %s, %d bytes", session.upload_id, session.file_id, session.size)
        return StoredFile(file_id=session.file_id, size=session.size, sha256=session.sha256)
