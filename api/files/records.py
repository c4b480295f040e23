"""Metadata of stored files in Cassandra's `files` table."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from cassandra.cluster import Session

from chat4all.cassandra import aexecute
from chat4all.clock import as_utc

logger = logging.getLogger(__name__)


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


class FileRecordStore:
    """Writes a file's row once its object is complete; reads it for downloads and message history."""

    def __init__(self, *, session: Session, timeout: float = 10.0) -> None:
        self._session = session
        self._timeout = timeout
        self._insert = session.prepare(
            "INSERT INTO files (file_id, conversation_id, uploader_id, filename, mime_type, size, sha256, "
            "bucket, object_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._get = session.prepare(
            "SELECT file_id, conversation_id, uploader_id, filename, mime_type, size, sha256, bucket, "
            "object_key, created_at FROM files WHERE file_id = ?"
        )

    async def insert(self, r: FileRecord) -> None:
        await aexecute(
            self._session,
            self._insert,
            (r.file_id, r.conversation_id, r.uploader_id, r.filename, r.mime_type, r.size, r.sha256,
             r.bucket, r.object_key, r.created_at),
            timeout=self._timeout,
        )

    async def get(self, file_id: uuid.UUID) -> FileRecord | None:
        rows = await aexecute(self._session, self._get, (file_id,), timeout=self._timeout)
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
