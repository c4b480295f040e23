"""What a stream's receiver and its part writes need from the uploader that opened it: stores, limits, discard."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from api.files.hashing import ResumableHashes
from api.files.sessions import UploadSession, UploadSessionRepository
from chat4all.objectstore import ObjectStore


class UploadContext(Protocol):
    """The uploader as its receivers see it (api/files/uploader.py's Uploader is one)."""

    objects: ObjectStore
    sessions: UploadSessionRepository
    hashes: ResumableHashes
    part_bytes: int
    parts_in_flight: int
    max_chunk_bytes: int
    session_ttl: timedelta

    async def discard(self, session: UploadSession) -> None:
        """Drop everything an unfinished upload wrote: multipart parts, staging objects, the session."""
        ...
