"""Caps on live streams (WebSocket and Subscribe together): per user and in total, in this process."""

from __future__ import annotations

from collections import Counter


class TooManyStreams(Exception):
    """A stream over a cap: refused before it takes a session, a subscription or a queue."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StreamLease:
    """One admitted stream; ``release()`` gives its slot back (safe to call twice)."""

    __slots__ = ("_limits", "user_id", "_released")

    def __init__(self, limits: StreamLimits, user_id: str) -> None:
        self._limits = limits
        self.user_id = user_id
        self._released = False

    def release(self) -> None:
        """Give the stream's slot back; a second call does nothing."""
        if not self._released:
            self._released = True
            self._limits._release(self.user_id)


class StreamLimits:
    """Counts this process's live streams, per user and in total.

    Not shared between API processes: behind N of them a user can hold up to N x ``per_user``
    streams (docs/security.md, Live connections).
    """

    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._by_user: Counter[str] = Counter()
        self._open = 0

    def acquire(self, user_id: str) -> StreamLease:
        """A slot for one more stream of ``user_id``; TooManyStreams when a cap is reached."""
        if self._open >= self.total:
            raise TooManyStreams(f"this server holds its most live streams ({self.total}); retry later")
        if self._by_user[user_id] >= self.per_user:
            raise TooManyStreams(
                f"too many live streams for this user (at most {self.per_user}, WebSocket and Subscribe "
                "together); close one and retry"
            )
        self._by_user[user_id] += 1
        self._open += 1
        return StreamLease(self, user_id)

    def _release(self, user_id: str) -> None:
        self._open -= 1
        self._by_user[user_id] -= 1
        if self._by_user[user_id] <= 0:
            del self._by_user[user_id]

    def open_streams(self, user_id: str | None = None) -> int:
        """Streams held now, by ``user_id`` or (None) in total."""
        return self._open if user_id is None else self._by_user.get(user_id, 0)
