"""An upload's SHA-256, computed while it streams, and the hash states kept for resumes in this process."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

from api.files.sessions import UploadSession


class StreamHash:
    """The SHA-256 of a file's bytes ``[0, covered)``, fed in file order by a chain of tasks.

    Each update runs in a worker thread (hashlib releases the GIL). Once the hash can no longer say
    which bytes it covers (a gap, a cancelled update, or a stream resumed in a process that did not
    see the earlier bytes) it is unknown for good, and the upload is verified by re-reading the
    stored object instead.
    """

    def __init__(self, state: Any | None, *, covered: int) -> None:
        self.state = state  # a hashlib object, None once unknown
        # The offset the hash will cover once the chain of updates is done.
        self.covered = covered
        self._job: asyncio.Task | None = None

    @property
    def known(self) -> bool:
        """False once the hash cannot be trusted to cover exactly ``[0, covered)``."""
        return self.state is not None

    def forget(self) -> None:
        """Give up on the hash: the upload is verified by re-reading what is stored."""
        self.state = None

    def hexdigest(self) -> str:
        """The digest of the bytes covered (call ``settle`` first)."""
        assert self.state is not None
        return self.state.hexdigest()

    def feed(self, data: memoryview, *, start: int) -> asyncio.Task | None:
        """Feed the bytes of ``data`` (from file offset ``start``) not hashed yet, after the earlier ones.

        Returns the task that hashes them, or None if there is nothing to do.
        """
        if self.state is None:
            return None
        skip = self.covered - start
        if skip < 0:  # a gap: cannot happen, but then the hash would be wrong
            self.state = None
            return None
        if skip >= len(data):
            return None
        self.covered = start + len(data)
        self._job = asyncio.create_task(self._update_after(self._job, data[skip:]))
        return self._job

    async def _update_after(self, previous: asyncio.Task | None, data: memoryview) -> None:
        state = self.state
        try:
            if previous is not None:
                await asyncio.wait([previous])
            if self.state is None:
                return
            await asyncio.to_thread(state.update, data)
        except asyncio.CancelledError:
            # The thread may still be feeding: the hash no longer says which bytes it covers,
            # so a resume verifies by re-reading instead.
            self.state = None
            raise

    async def settle(self, *, received: int) -> None:
        """Wait for the updates fed so far; the hash becomes unknown unless they cover ``[0, received)``."""
        if self._job is not None:
            await asyncio.wait([self._job])
        if self.covered != received:
            self.state = None


class ResumableHashes:
    """Hash states of uploads whose stream was cut in this process.

    Python's hash state cannot be serialized, so a stream resumed here continues the same hash
    object instead of re-reading.
    """

    def __init__(self) -> None:
        # (uploader_id, upload_id) -> (offset, hash state of the bytes [0, offset)).
        self._states: dict[tuple[uuid.UUID, str], tuple[int, Any]] = {}

    def take(self, session: UploadSession) -> StreamHash:
        """The hash to continue for the session's next stream (unknown if this process has none)."""
        cached = self._states.pop(session.key, None)
        if session.bytes_received == 0:
            state = hashlib.sha256()
        elif cached is not None and cached[0] == session.bytes_received:
            state = cached[1]
        else:
            state = None  # verified by reading the assembled object back
        return StreamHash(state, covered=session.bytes_received)

    def keep(self, session: UploadSession, stream_hash: StreamHash) -> None:
        """Keep ``stream_hash`` for a resume if it covers exactly the session's durable bytes."""
        if stream_hash.known and stream_hash.covered == session.bytes_received:
            self._states[session.key] = (session.bytes_received, stream_hash.state)

    def forget(self, session: UploadSession) -> None:
        """Drop the session's hash state (the upload is finished or discarded)."""
        self._states.pop(session.key, None)
