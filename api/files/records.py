"""Metadata of stored files in Cassandra's `files` table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cassandra.cluster import Session

from chat4all.cassandra import aexecute
from chat4all.clock import as_utc


@dataclass(frozen=True)
class FileRecord:
    """A complete, checksum-verified object and who may see it."""

    file_id: uuid.UUID
    conversation_id: uuid.UUID
    uploader_id: uuid.UUID
    filename: str
    mime_type: str
    size: int
    sha256: str
    bucket: str
    object_key: str
    created_at: datetime


class FileRecordRepository:
    """Writes a file's row once its object is complete; reads it for downloads and message history.

    Statements are prepared once, here (blocking: build it off the loop).
    """

    def __init__(self, *, session: Session, timeout: float = 10.0) -> None:
        self._cql = session
        self._timeout = timeout
        self._insert = session.prepare(
            "INSERT INTO files (file_id, conversation_id, uploader_id, filename, mime_type, size, sha256, "
            "bucket, object_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._get = session.prepare(
            "SELECT file_id, conversation_id, uploader_id, filename, mime_type, size, sha256, bucket, "
            "object_key, created_at FROM files WHERE file_id = ?"
        )

    async def insert(self, record: FileRecord) -> None:
        """Write the file's row (an upsert: a retried finish writes the same row again)."""
        await aexecute(
            self._cql,
            self._insert,
            (
                record.file_id,
                record.conversation_id,
                record.uploader_id,
                record.filename,
                record.mime_type,
                record.size,
                record.sha256,
                record.bucket,
                record.object_key,
                record.created_at,
            ),
            timeout=self._timeout,
        )

    async def get(self, file_id: uuid.UUID, *, timeout: float | None = None) -> FileRecord | None:
        """The file's record, or None; ``timeout`` (seconds) defaults to the repository's."""
        rows = await aexecute(
            self._cql, self._get, (file_id,), timeout=self._timeout if timeout is None else timeout
        )
        row = rows.one()
        if row is None:
            return None
        return FileRecord(
            file_id=row.file_id,
            conversation_id=row.conversation_id,
            uploader_id=row.uploader_id,
            filename=row.filename or "",
            mime_type=row.mime_type or "",
            size=row.size or 0,
            sha256=row.sha256 or "",
            bucket=row.bucket or "",
            object_key=row.object_key or "",
            created_at=as_utc(row.created_at),
        )
