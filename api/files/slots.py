"""Upload stream slots of one API process (in all, and per user), and what one stream holds until it is done."""

from __future__ import annotations

import asyncio
import uuid

from api.files.errors import TooManyStreams

# How long a client refused for lack of a stream slot waits: slots free as streams end, or
# within the idle timeout for a stream that stalls.
STREAM_RETRY_SECONDS = 2.0


class StreamSlots:
    """Counts the streams this process is receiving, with a cap in all and a cap per user.

    Each stream buffers up to ``parts_in_flight + 1`` parts, so a cap keeps the process's memory
    predictable; the cap per user keeps one user's (idle) streams from taking every slot.
    """

    def __init__(self, *, max_streams: int, max_streams_per_user: int) -> None:
        self.max_streams = max_streams
        self.max_streams_per_user = max_streams_per_user
        self._active = 0
        self._of_user: dict[uuid.UUID, int] = {}

    def take(self, user: uuid.UUID) -> None:
        """Take a slot for one of ``user``'s streams; TooManyStreams if the process's or the user's are taken."""
        if self._active >= self.max_streams:
            raise TooManyStreams(
                f"this server is receiving {self.max_streams} uploads already; retry in a few seconds",
                retry_after=STREAM_RETRY_SECONDS,
            )
        if self._of_user.get(user, 0) >= self.max_streams_per_user:
            raise TooManyStreams(
                f"you have {self.max_streams_per_user} upload streams open on this server already (the limit); "
                "retry once one of them ends",
                retry_after=STREAM_RETRY_SECONDS,
            )
        self._active += 1
        self._of_user[user] = self._of_user.get(user, 0) + 1

    def free(self, user: uuid.UUID) -> None:
        """Give back a slot ``take`` gave ``user``."""
        self._active -= 1
        left = self._of_user.get(user, 1) - 1
        if left > 0:
            self._of_user[user] = left
        else:
            self._of_user.pop(user, None)


class StreamHold:
    """What one stream holds until it and its background save or finish are done.

    Its upload's lock and a stream slot (taken by the caller). Released exactly once.
    """

    def __init__(self, *, slots: StreamSlots, lock: asyncio.Lock, user: uuid.UUID) -> None:
        self._slots = slots
        self._lock = lock
        self._user = user
        self._released = False

    def give_back(self) -> None:
        """The slot only (the lock was never acquired)."""
        if not self._released:
            self._released = True
            self._slots.free(self._user)

    def release(self) -> None:
        """The lock and the slot."""
        if not self._released:
            self._released = True
            self._lock.release()
            self._slots.free(self._user)
