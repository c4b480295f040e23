"""UploadSessionRepository on the real Cassandra: the cleaner's scan and the per-user count read a page at a time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from api.files.sessions import UploadSession, UploadSessionRepository
from chat4all.clock import utc_now

pytestmark = pytest.mark.integration


def test_scan_and_open_sessions_page_through_the_table(cql) -> None:
    uploader = uuid.uuid4()
    now = utc_now()

    def session(i: int) -> UploadSession:
        file_id = uuid.uuid4()
        return UploadSession(
            uploader_id=uploader,
            upload_id=f"page-{i}",
            conversation_id=uuid.uuid4(),
            file_id=file_id,
            filename="p.bin",
            mime_type="application/octet-stream",
            size=10,
            sha256="0" * 64,
            object_key=f"test/{file_id}",
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )

    async def run() -> tuple[list[int], set[str], int]:
        sessions = await asyncio.to_thread(UploadSessionRepository, session=cql, page_size=3)
        mine = [session(i) for i in range(8)]
        try:
            for s in mine:
                assert await sessions.create(s)
            pages: list[int] = []
            seen: set[str] = set()
            async for page in sessions.scan():
                pages.append(len(page))
                seen.update(s.upload_id for s in page if s.uploader_id == uploader)
            open_count = len(await sessions.open_sessions(uploader, now=now))
            return pages, seen, open_count
        finally:
            for s in mine:
                await sessions.delete(s)

    pages, seen, open_count = asyncio.run(run())
    assert seen == {f"page-{i}" for i in range(8)}
    assert len(pages) >= 3 and all(n <= 3 for n in pages), pages  # never more than a page in memory
    assert open_count == 8  # eight sessions of one uploader, read over three pages
