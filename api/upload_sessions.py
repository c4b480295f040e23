"""Resumable upload sessions in Cassandra's `uploads` table, changed only by conditional (LWT) writes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import SimpleStatement

from chat4all.cassandra import aexecute

logger = logging.getLogger(__name__)

RECEIVING = "receiving"
COMPLETE = "complete"
EXPIRED = "expired"

_COLUMNS = (
    "upload_id, uploader_id, conversation_id, file_id, filename, mime_type, size, sha256, object_key, "
    "s3_upload_id, parts, tail_bytes, bytes_received, state, created_at, expires_at"
)


@dataclass
class UploadSession:
    """One upload session: what is being uploaded and which of its bytes are durable where."""

    upload_id: str
    uploader_id: uuid.UUID
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
        return self.expires_at <= (now or datetime.now(UTC))


def staging_prefix(file_id: uuid.UUID) -> str:
    """Prefix of an upload's staging objects (tails below S3's minimum part size)."""
    return f"staging/{file_id}/"


def now_ms() -> datetime:
    """Now in UTC, truncated to milliseconds as Cassandra stores timestamps (so compare-and-set matches)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _aware(ts: datetime | None) -> datetime | None:
    # The driver returns naive datetimes that are UTC.
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


class SessionConflict(Exception):
    """A conditional write lost: another stream changed the session first."""


class UploadSessionStore:
    """Reads and conditionally writes `uploads` rows; every change is fenced on bytes_received."""

    def __init__(self, *, session: Session, timeout: float = 10.0) -> None:
        self._session = session
        self._timeout = timeout
        cl = ConsistencyLevel.LOCAL_QUORUM
        prepare = session.prepare
        self._get = prepare(f"SELECT {_COLUMNS} FROM uploads WHERE upload_id = ?")
        self._insert = prepare(
            f"INSERT INTO uploads ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        self._set_s3_upload = prepare(
            "UPDATE uploads SET s3_upload_id = ? WHERE upload_id = ? IF bytes_received = ? AND state = ?"
        )
        self._commit_part = prepare(
            "UPDATE uploads SET parts = parts + ?, tail_bytes = 0, bytes_received = ?, expires_at = ? "
            "WHERE upload_id = ? IF bytes_received = ? AND state = ?"
        )
        self._commit_tail = prepare(
            "UPDATE uploads SET tail_bytes = ?, bytes_received = ?, expires_at = ? "
            "WHERE upload_id = ? IF bytes_received = ? AND state = ?"
        )
        self._complete = prepare(
            "UPDATE uploads SET state = ?, bytes_received = ?, tail_bytes = 0, parts = [] "
            "WHERE upload_id = ? IF bytes_received = ? AND state = ?"
        )
        self._expire = prepare("UPDATE uploads SET state = ? WHERE upload_id = ? IF expires_at = ?")
        self._delete = prepare("DELETE FROM uploads WHERE upload_id = ? IF EXISTS")
        for stmt in (self._get, self._insert, self._set_s3_upload, self._commit_part, self._commit_tail,
                     self._complete, self._expire, self._delete):
            stmt.consistency_level = cl

    async def _run(self, stmt, params):  # noqa: ANN001, ANN202 - thin wrapper
        return await aexecute(self._session, stmt, params, timeout=self._timeout)

    async def get(self, upload_id: str) -> UploadSession | None:
        """The session, or None."""
        rows = await self._run(self._get, (upload_id,))
        row = rows.one()
        return _from_row(row) if row is not None else None

    async def create(self, s: UploadSession) -> bool:
        """Insert a new session; False if the upload_id is already taken."""
        result = await self._run(
            self._insert,
            (s.upload_id, s.uploader_id, s.conversation_id, s.file_id, s.filename, s.mime_type, s.size,
             s.sha256, s.object_key, s.s3_upload_id, s.parts, s.tail_bytes, s.bytes_received, s.state,
             s.created_at, s.expires_at),
        )
        return bool(result.was_applied)

    async def set_s3_upload(self, s: UploadSession, s3_upload_id: str) -> None:
        """Record the S3 multipart upload id (right after creating it, so that clean-up can abort it)."""
        result = await self._run(self._set_s3_upload, (s3_upload_id, s.upload_id, s.bytes_received, RECEIVING))
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.s3_upload_id = s3_upload_id

    async def commit_part(self, s: UploadSession, part: tuple[int, str, int], *, expires_at: datetime) -> None:
        """Record a written part; the staged tail (now inside the part) no longer counts."""
        new_received = s.parts_bytes + part[2]
        result = await self._run(
            self._commit_part, ([part], new_received, expires_at, s.upload_id, s.bytes_received, RECEIVING)
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
            self._commit_tail, (tail_bytes, new_received, expires_at, s.upload_id, s.bytes_received, RECEIVING)
        )
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.tail_bytes = tail_bytes
        s.bytes_received = new_received
        s.expires_at = expires_at

    async def mark_complete(self, s: UploadSession) -> None:
        """The file is stored and its metadata written; keep the row so that a retry gets the same file_id."""
        result = await self._run(self._complete, (COMPLETE, s.size, s.upload_id, s.bytes_received, RECEIVING))
        if not result.was_applied:
            raise SessionConflict(s.upload_id)
        s.state = COMPLETE
        s.bytes_received = s.size
        s.parts = []
        s.tail_bytes = 0

    async def mark_expired(self, s: UploadSession) -> bool:
        """Claim an expired session for clean-up; False if a stream extended it meanwhile."""
        result = await self._run(self._expire, (EXPIRED, s.upload_id, s.expires_at))
        if result.was_applied:
            s.state = EXPIRED
        return bool(result.was_applied)

    async def delete(self, upload_id: str) -> None:
        await self._run(self._delete, (upload_id,))

    async def scan(self) -> list[UploadSession]:
        """Every session. The table holds only live and recently finished uploads, so a scan is small."""
        stmt = SimpleStatement(f"SELECT {_COLUMNS} FROM uploads", fetch_size=500)
        stmt.consistency_level = ConsistencyLevel.LOCAL_QUORUM
        # Paging fetches further pages synchronously while iterating: do it all in a thread.
        rows = await asyncio.to_thread(lambda: list(self._session.execute(stmt, timeout=self._timeout)))
        return [_from_row(r) for r in rows]


def _from_row(row) -> UploadSession:  # noqa: ANN001 - driver row
    return UploadSession(
        upload_id=row.upload_id,
        uploader_id=row.uploader_id,
        conversation_id=row.conversation_id,
        file_id=row.file_id,
        filename=row.filename or "",
        mime_type=row.mime_type or "",
        size=row.size or 0,
        sha256=row.sha256 or "",
        object_key=row.object_key,
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at),
        s3_upload_id=row.s3_upload_id,
        parts=[(int(n), str(e), int(z)) for n, e, z in (row.parts or [])],
        tail_bytes=row.tail_bytes or 0,
        bytes_received=row.bytes_received or 0,
        state=row.state or RECEIVING,
    )
