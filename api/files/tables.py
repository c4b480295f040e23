"""The files package's Cassandra repositories over the API's session, built once, on first use."""

from __future__ import annotations

import asyncio

from api.db.cassandra import Cassandra
from api.files.records import FileRecordRepository
from api.files.sessions import UploadSessionRepository


class FileTables:
    """The `upload_sessions` and `files` repositories of one API process.

    Built on first use, not at start: the API starts while Cassandra is down (``cassandra``, the
    API's api.db.cassandra.Cassandra, connects on first use and again after an outage), and
    preparing their statements blocks, so it runs off the loop, once. ``timeout`` (seconds) is
    the repositories' per-statement timeout and the default wait for the connection.
    """

    def __init__(self, *, cassandra: Cassandra, timeout: float) -> None:
        self._cassandra = cassandra
        self._timeout = timeout
        self._built: tuple[UploadSessionRepository, FileRecordRepository] | None = None
        self._building = asyncio.Lock()

    async def sessions(self, *, timeout: float | None = None) -> UploadSessionRepository:
        """The `upload_sessions` repository; DependencyUnavailable if Cassandra does not answer within ``timeout``."""
        return (await self._build(timeout))[0]

    async def records(self, *, timeout: float | None = None) -> FileRecordRepository:
        """The `files` repository; DependencyUnavailable if Cassandra does not answer within ``timeout``."""
        return (await self._build(timeout))[1]

    async def _build(self, timeout: float | None) -> tuple[UploadSessionRepository, FileRecordRepository]:
        if self._built is not None:
            return self._built
        async with self._building:
            if self._built is None:
                session = await self._cassandra.session(self._timeout if timeout is None else timeout)

                def prepare() -> tuple[UploadSessionRepository, FileRecordRepository]:
                    return (
                        UploadSessionRepository(session=session, timeout=self._timeout),
                        FileRecordRepository(session=session, timeout=self._timeout),
                    )

                self._built = await asyncio.to_thread(prepare)
        return self._built
