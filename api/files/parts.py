"""Parts cut from one upload stream on their way to S3, recorded in file order, and the buffers they reuse."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from api.files.sessions import Part, UploadSession
from chat4all.clock import utc_now

if TYPE_CHECKING:
    from api.files.upload_context import UploadContext


class _PartWrite:
    """A part on its way to S3; its buffer stays here until the row records it."""

    __slots__ = ("buffer", "data", "hashing", "task")

    def __init__(
        self, buffer: bytearray, data: memoryview, hashing: asyncio.Task | None, task: asyncio.Task
    ) -> None:
        self.buffer, self.data, self.hashing, self.task = buffer, data, hashing, task


class PartWrites:
    """Up to ``parts_in_flight`` parts of one stream uploading at once.

    The session row records them in order, and a part that fails keeps its bytes (and those of the
    parts after it) for the staged tail. Part buffers are reused once their part is recorded and
    hashed, so a stream allocates (and the OS zero-fills) at most ``parts_in_flight + 1`` of them,
    whatever the file's size.
    """

    def __init__(self, *, uploader: UploadContext, session: UploadSession) -> None:
        self._uploader = uploader
        self._session = session
        self._spare_buffers: list[bytearray] = []
        # Parts cut and not yet known to be recorded, oldest first; numbered at the cut.
        self._in_flight: deque[_PartWrite] = deque()
        self._next_number = len(session.parts) + 1
        # Bytes of parts that failed (in order), after the recorded ones: only the staged tail
        # follows, which takes them.
        self.unrecorded: list[memoryview] = []
        self._multipart: asyncio.Task | None = None

    def new_buffer(self, start: int) -> bytearray:
        """A buffer for the part that starts at file offset ``start`` (the last one may be shorter)."""
        need = min(self._uploader.part_bytes, self._session.size - start)
        for i, spare in enumerate(self._spare_buffers):
            if len(spare) >= need:
                return self._spare_buffers.pop(i)
        return bytearray(need)

    async def make_room(self) -> None:
        """Wait until fewer than ``parts_in_flight`` parts are in flight.

        Raises (after ``settle``) the error of a part that failed.
        """
        while len(self._in_flight) >= self._uploader.parts_in_flight:
            oldest = self._in_flight[0]
            try:
                # Shielded: if this call is cancelled, settle() still finds the part in flight.
                await asyncio.shield(oldest.task)
            except asyncio.CancelledError:
                raise
            except Exception:
                await self.settle()  # keeps the unrecorded bytes and raises
            self._in_flight.popleft()
            if oldest.hashing is None or oldest.hashing.done():
                self._spare_buffers.append(oldest.buffer)  # nothing reads it any more

    def write(self, *, buffer: bytearray, data: memoryview, hashing: asyncio.Task | None) -> None:
        """Start writing ``data`` (a view of ``buffer``; ``hashing`` reads it too) as the next part."""
        number = self._next_number
        self._next_number += 1
        previous = self._in_flight[-1].task if self._in_flight else None
        task = asyncio.create_task(self._write_part(number, data, previous))
        self._in_flight.append(_PartWrite(buffer, data, hashing, task))

    async def _start_multipart(self) -> None:
        session, objects = self._session, self._uploader.objects
        s3_upload_id = await objects.create_multipart(session.object_key, content_type=session.mime_type)
        try:
            await self._uploader.sessions.set_s3_upload(session, s3_upload_id=s3_upload_id)
        except BaseException:
            await objects.abort_multipart(session.object_key, s3_upload_id=s3_upload_id)
            raise

    async def _write_part(self, number: int, data: memoryview, previous: asyncio.Task | None) -> None:
        session = self._session
        if session.s3_upload_id is None:
            if self._multipart is None:
                self._multipart = asyncio.create_task(self._start_multipart())
            await self._multipart
        etag = await self._uploader.objects.upload_part(
            session.object_key, s3_upload_id=session.s3_upload_id, part_number=number, data=data
        )
        if previous is not None:
            # Parts are recorded in order: one whose predecessor failed stays unrecorded (its
            # S3 part is replaced when the resumed stream writes that number again).
            await previous
        await self._uploader.sessions.commit_part(
            session, part=Part(number, etag, len(data)), expires_at=utc_now() + self._uploader.session_ttl
        )

    async def settle(self) -> None:
        """Wait for every part in flight.

        If one failed, its bytes and those of the parts after it (none of them is recorded) go to
        ``unrecorded``, and its error is raised.
        """
        if not self._in_flight:
            return
        await asyncio.wait([w.task for w in self._in_flight])
        error: BaseException | None = None
        for w in self._in_flight:
            failure = asyncio.CancelledError() if w.task.cancelled() else w.task.exception()
            if failure is None and error is None:
                continue
            error = error or failure
            self.unrecorded.append(w.data)
        self._in_flight.clear()
        if error is not None:
            self._next_number = len(self._session.parts) + 1
            raise error
