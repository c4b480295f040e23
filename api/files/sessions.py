"""Resumable upload sessions in Cassandra's `upload_sessions` table (one partition per uploader), changed only by conditional (LWT) writes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from cassandra.cluster import ResultSet, Session

from api.files.errors import SessionConflict
from chat4all.cassandra import aexecute
from chat4all.clock import as_utc, utc_now

RECEIVING = "receiving"
COMPLETE = "complete"
EXPIRED = "expired"

_COLUMNS = (
    "uploader_id, upload_id, conversation_id, file_id, filename, mime_type, size, sha256, object_key, "
    "s3_upload_id, parts, tail_bytes, bytes_received, state, created_at, expires_at"
)


class Part(NamedTuple):
    """One S3 part of a multipart upload, as the session row records it."""

    number: int
    etag: str
    size: int


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
    # The S3 parts written so far, in order.
    parts: list[Part] = field(default_factory=list)
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
        return sum(part.size for part in self.parts)

    @property
    def staging_prefix(self) -> str:
        """Prefix of this upload's staging objects."""
        return staging_prefix(self.file_id)

    @property
    def tail_key(self) -> str:
        """Key of the staging object holding the tail after the parts."""
        return f"{self.staging_prefix}{self.parts_bytes}"

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the session's expiry time has passed at ``now`` (default: the present)."""
        return self.expires_at <= (now or utc_now())


def staging_prefix(file_id: uuid.UUID) -> str:
    """Prefix of an upload's staging objects (tails below S3's minimum part size)."""
    return f"staging/{file_id}/"


class UploadSessionRepository:
    """Reads and conditionally writes `upload_sessions` rows, each change fenced on bytes_received.

    A change raises SessionConflict when another stream changed the row first. It is written to the
    row, then to the UploadSession passed in, so that it keeps saying what the row holds. Statements
    are prepared once, here (blocking: build it off the loop); consistency levels come from the
    cluster's execution profiles (chat4all/cassandra.py).
    """

    def __init__(self, *, session: Session, timeout: float = 10.0, page_size: int = 500) -> None:
        self._cql = session
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

    async def _run(self, stmt: Any, params: Any, *, paging_state: bytes | None = None) -> ResultSet:
        return await aexecute(self._cql, stmt, params, timeout=self._timeout, paging_state=paging_state)

    async def _pages(self, stmt: Any, params: Any) -> AsyncIterator[list[Any]]:
        """The rows of a paged query, one driver page (``page_size`` rows) at a time."""
        paging_state = None
        while True:
            rows = await self._run(stmt, params, paging_state=paging_state)
            yield list(rows.current_rows)
            paging_state = rows.paging_state
            if paging_state is None:
                return

    async def get(self, *, uploader_id: uuid.UUID, upload_id: str) -> UploadSession | None:
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

    async def create(self, session: UploadSession) -> bool:
        """Insert a new session; False if the uploader already has one with this upload_id."""
        result = await self._run(
            self._insert,
            (
                session.uploader_id,
                session.upload_id,
                session.conversation_id,
                session.file_id,
                session.filename,
                session.mime_type,
                session.size,
                session.sha256,
                session.object_key,
                session.s3_upload_id,
                session.parts,
                session.tail_bytes,
                session.bytes_received,
                session.state,
                session.created_at,
                session.expires_at,
            ),
        )
        return bool(result.was_applied)

    async def set_s3_upload(self, session: UploadSession, *, s3_upload_id: str) -> None:
        """Record the S3 multipart upload id (right after creating it, so that clean-up can abort it)."""
        result = await self._run(
            self._set_s3_upload, (s3_upload_id, *session.key, session.bytes_received, RECEIVING)
        )
        if not result.was_applied:
            raise SessionConflict(session.upload_id)
        session.s3_upload_id = s3_upload_id

    async def commit_part(self, session: UploadSession, *, part: Part, expires_at: datetime) -> None:
        """Record a written part; the staged tail (now inside the part) no longer counts."""
        new_received = session.parts_bytes + part.size
        result = await self._run(
            self._commit_part,
            ([part], new_received, expires_at, *session.key, session.bytes_received, RECEIVING),
        )
        if not result.was_applied:
            raise SessionConflict(session.upload_id)
        session.parts.append(part)
        session.tail_bytes = 0
        session.bytes_received = new_received
        session.expires_at = expires_at

    async def commit_tail(self, session: UploadSession, *, tail_bytes: int, expires_at: datetime) -> None:
        """Record that the staging object at ``session.tail_key`` now holds ``tail_bytes`` durable bytes."""
        new_received = session.parts_bytes + tail_bytes
        result = await self._run(
            self._commit_tail,
            (tail_bytes, new_received, expires_at, *session.key, session.bytes_received, RECEIVING),
        )
        if not result.was_applied:
            raise SessionConflict(session.upload_id)
        session.tail_bytes = tail_bytes
        session.bytes_received = new_received
        session.expires_at = expires_at

    async def mark_complete(self, session: UploadSession) -> None:
        """The file is stored and its metadata written; keep the row so that a retry gets the same file_id."""
        result = await self._run(
            self._complete, (COMPLETE, session.size, *session.key, session.bytes_received, RECEIVING)
        )
        if not result.was_applied:
            raise SessionConflict(session.upload_id)
        session.state = COMPLETE
        session.bytes_received = session.size
        session.parts = []
        session.tail_bytes = 0

    async def mark_expired(self, session: UploadSession) -> bool:
        """Claim an expired session for clean-up; False if a stream extended it meanwhile."""
        result = await self._run(self._expire, (EXPIRED, *session.key, session.expires_at))
        if result.was_applied:
            session.state = EXPIRED
        return bool(result.was_applied)

    async def delete(self, session: UploadSession) -> None:
        """Delete the session's row (if it is still there)."""
        await self._run(self._delete, session.key)

    async def scan(self) -> AsyncIterator[list[UploadSession]]:
        """Every session, one page (``page_size`` rows, the driver's paging) at a time.

        The cleaner never holds more than a page of the table.
        """
        async for page in self._pages(self._scan, None):
            yield [_from_row(r) for r in page]


def _from_row(row: Any) -> UploadSession:
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
        parts=[Part(int(n), str(e), int(z)) for n, e, z in (row.parts or [])],
        tail_bytes=row.tail_bytes or 0,
        bytes_received=row.bytes_received or 0,
        state=row.state or RECEIVING,
    )
