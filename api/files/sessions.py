"""Resumable upload sessions in Cassandra's `upload_sessions` table (one partition per uploader), changed only by conditional (LWT) writes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cassandra.cluster import Session

from chat4all.cassandra import aexecute
from chat4all.clock import as_utc, utc_now

logger = logging.getLogger(__name__)

RECEIVING = "receiving"
COMPLETE = "complete"
EXPIRED = "expired"

_COLUMNS = (
    "uploader_id, upload_id, conversation_id, file_id, filename, mime_type, size, sha256, object_key, "
    "s3_upload_id, parts, tail_bytes, bytes_received, state, created_at, expires_at"
)


@dataclass
class UploadSession:
    """One upload session: what is being uploaded and which of its bytes are durable where."""

    uploader_id: uuid.UUID
    upload_id: str
    conversation_id: uuid.UUID
    file_id: uuid.UUID
    filename: str
    mime_type: str
    size: int
    sha256: str
    object_key: str
    created_at: datetime
    expires_at: datetime
    s3_upload_id: str | None = None
    # (part_number, etag, size) of the S3 parts written so far, in order.
    parts: list[tuple[int, str, int]] = field(default_factory=list)
    tail_bytes: int = 0
    bytes_received: int = 0
    state: str = RECEIVING

    @property
    def key(self) -> tuple[uuid.UUID, str]:
        """What names the session: upload ids are unique per uploader only."""
        return (self.uploader_id, self.upload_id)

    @property
    def parts_bytes(self) -> int:
        """Bytes held in S3 parts; the staged tail starts at this offset."""
        return sum(size for _, _, size in self.parts)

    @property
    def staging_prefix(self) -> str:
        return staging_prefix(self.file_id)

    @property
    def tail_key(self) -> str:
        """Key of the staging object holding the tail after the parts."""
        return f"{self.staging_prefix}{self.parts_bytes}"

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or utc_now())


def staging_prefix(file_id: uuid.UUID) -> str:
    """Prefix of an upload's staging objects (tails below S3's minimum part size)."""
    return f"staging/{file_id}/"


class SessionConflict(Exception):
    """A conditional write lost: another stream changed the session first."""


class UploadSessionStore:
    """Reads and conditionally writes `upload_sessions` rows; every change is fenced on bytes_received.

    Consistency levels come from the cluster's execution profiles (chat4all/cassandra.py).
    """

    def __init__(self, *, session: Session, timeout: float = 10.0, page_size: int = 500) -> None:
        self._session = session
        self._timeout = timeout
        self._page_size = page_size
        prepare = session.prepare
        where = "WHERE uploader_id = ? AND upload_id = ?"
        self._get = prepare(f"SELECT {_COLUMNS} FROM upload_sessions {where}")
        self._insert = prepare(
            f"INSERT INTO upload_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        self._set_s3_upload = prepare(
            f"UPDATE upload_sessions SET s3_upload_id = ? {where} IF bytes_received = ? AND state = ?"
        )
        self._commit_part = prepare(
            "UPDATE upload_sessions SET parts = parts + ?, tail_bytes = 0, bytes_received = ?, expires_at = ? "
            f"{where} IF bytes_received = ? AND state = ?"
        )
        self._commit_tail = prepare(
            f"UPDATE upload_sessions SET tail_bytes = ?, bytes_received = ?, expires_at = ? {where} "
            "IF bytes_received = ? AND state = ?"
        )
        self._complete = prepare(
            "UPDATE upload_sessions SET state = ?, bytes_received = ?, tail_bytes = 0, parts = [] "
            f"{where} IF bytes_received = ? AND state = ?"
        )
        self._expire = prepare(f"UPDATE upload_sessions SET state = ? {where} IF expires_at = ?")
        self._delete = prepare(f"DELETE FROM upload_sessions {where} IF EXISTS")
        self._of_uploader = prepare("SELECT state, expires_at FROM upload_sessions WHERE uploader_id = ?")
        self._of_uploader.fetch_size = page_size
        self._scan = prepare(f"SELECT {_COLUMNS} FROM upload_sessions")
        self._scan.fetch_size = page_size

    async def _run(self, stmt, params, *, paging_state: bytes | None = None):  # noqa: ANN001, ANN202 - thin wrapper
        return await aexecute(self._session, stmt, params, timeout=self._timeout, paging_state=paging_state)

    async def _pages(self, stmt: Any, params: Any) -> AsyncIterator[list[Any]]:
        """The rows of a paged query, one driver page (``page_size`` rows) at a time."""
        paging_state = None
        while True:
            rows = await self._run(stmt, params, paging_state=paging_state)
            yield list(rows.current_rows)
            paging_state = rows.paging_state
            if paging_state is None:
                return

    async def get(self, uploader_id: uuid.UUID, upload_id: str) -> UploadSession | None:
        """The uploader's session named ``upload_id``, or None."""
        rows = await self._run(self._get, (uploader_id, upload_id))
        row = rows.one()
        return _from_row(row) if row is not None else None

    async def open_sessions(self, uploader_id: uuid.UUID, *, now: datetime) -> list[datetime]:
        """Expiry times of the uploader's unfinished sessions that have not expired (one partition read)."""
        open_until: list[datetime] = []
        async for page in self._pages(self._of_uploader, (uploader_id,)):
            for row in page:
                expires_at = as_utc(row.expires_at)
                if (row.state or RECEIVING) == RECEIVING and expires_at is not None and expires_at > now:
                    open_until.append(expires_at)
        return open_until

    async def create(self, s: UploadSession) -> bool:
        """Insert a new session; False if the uploader already has one with this upload_id."""
        result = await self._run(
            self._insert,
            (s.uploader_id, s.upload_id, s.conversation_id, s.file_id, s.filename, s.mime_type, s.size,
             s.sha256, s.object_key, s.s3_upload_id, s.parts, s.tail_bytes, s.bytes_received, s.state,
             s.created_at, s.expires_at),
        )
        return bool(result.was_applied)

    async def set_s3_upload(self, s: UploadSession, s3_upload_id: str) -> None:
        """Record the S3 multipart upload id (right after creating it, so that clean-up can abort it)."""
        result = await self._run(self._set_s3_upload, (s3_upload_id, *s.key, s.bytes_received, RECEIVING))
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.s3_upload_id = s3_upload_id

    async def commit_part(self, s: UploadSession, part: tuple[int, str, int], *, expires_at: datetime) -> None:
        """Record a written part; the staged tail (now inside the part) no longer counts."""
        new_received = s.parts_bytes + part[2]
        result = await self._run(
            self._commit_part, ([part], new_received, expires_at, *s.key, s.bytes_received, RECEIVING)
        )
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.parts.append(part)
        s.tail_bytes = 0
        s.bytes_received = new_received
        s.expires_at = expires_at

    async def commit_tail(self, s: UploadSession, tail_bytes: int, *, expires_at: datetime) -> None:
        """Record that the staging object at ``s.tail_key`` now holds ``tail_bytes`` durable bytes."""
        new_received = s.parts_bytes + tail_bytes
        result = await self._run(
            self._commit_tail, (tail_bytes, new_received, expires_at, *s.key, s.bytes_received, RECEIVING)
        )
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.tail_bytes = tail_bytes
        s.bytes_received = new_received
        s.expires_at = expires_at

    async def mark_complete(self, s: UploadSession) -> None:
        """The file is stored and its metadata written; keep the row so that a retry gets the same file_id."""
        result = await self._run(self._complete, (COMPLETE, s.size, *s.key, s.bytes_received, RECEIVING))
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.state = COMPLETE
        s.bytes_received = s.size
        s.parts = []
        s.tail_bytes = 0

    async def mark_expired(self, s: UploadSession) -> bool:
        """Claim an expired session for clean-up; False if a stream extended it meanwhile."""
        result = await self._run(self._expire, (EXPIRED, *s.key, s.expires_at))
        if result.was_applied:
            s.state = EXPIRED
        return bool(result.was_applied)

    async def delete(self, s: UploadSession) -> None:
        await self._run(self._delete, s.key)

    async def scan(self) -> AsyncIterator[list[UploadSession]]:
        """Every session, one page (``page_size`` rows, the driver's paging) at a time: the cleaner
        never holds more than a page of the table."""
        async for page in self._pages(self._scan, None):
            yield [_from_row(r) for r in page]


def _from_row(row) -> UploadSession:  # noqa: ANN001 - driver row
    return UploadSession(
        uploader_id=row.uploader_id,
        upload_id=row.upload_id,
        conversation_id=row.conversation_id,
        file_id=row.file_id,
        filename=row.filename or "",
        mime_type=row.mime_type or "",
        size=row.size or 0,
        sha256=row.sha256 or "",
        object_key=row.object_key,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        s3_upload_id=row.s3_upload_id,
        parts=[(int(n), str(e), int(z)) for n, e, z in (row.parts or [])],
        tail_bytes=row.tail_bytes or 0,
        bytes_received=row.bytes_received or 0,
        state=row.state or RECEIVING,
    )
