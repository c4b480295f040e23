"""Password hashing with argon2 on a bounded thread pool of its own, never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api import metrics
from api.errors import ApiError

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("chat4all-dummy-password")
# A first guess of one hash's duration (argon2-cffi defaults: 64 MiB, t=3, p=4; about 0.2 s on
# the development machines), replaced by a moving average of the measured ones.
_FIRST_ESTIMATE_SECONDS = 0.2
_MAX_RETRY_SECONDS = 30.0

T = TypeVar("T")


def _check(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
        loop.call_soon_threadsafe(fn, *args)


class PasswordHasherPool:
    """argon2 hashes and verifications on ``threads`` threads of their own.

    Each one takes 64 MiB and a core for about 0.2 s. On asyncio's default executor a login
    flood queued S3 calls (which run there too) behind it and grew memory with the queue; here
    at most ``threads`` run at once, at most ``queue`` more wait, and a call beyond that gets
    RESOURCE_EXHAUSTED with ``retry-after`` at once, before it costs anything. One ``owner``
    (the caller's address) holds at most ``per_owner`` of those places, so that one client's
    flood leaves room for the others.
    """

    def __init__(self, *, threads: int, queue: int, per_owner: int = 0) -> None:
        self._threads = max(1, threads)
        self._capacity = self._threads + max(0, queue)
        self._per_owner = per_owner if per_owner > 0 else self._capacity
        self._executor = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="argon2")
        self._busy = 0  # hashes running or waiting for a thread
        self._owners: dict[str, int] = {}  # owner -> its hashes running or waiting
        self._mean_seconds = _FIRST_ESTIMATE_SECONDS

    @property
    def busy(self) -> int:
        """Hashes running or queued right now."""
        return self._busy

    async def hash(self, password: str, *, owner: str = "") -> str:
        """The argon2id hash of ``password``."""
        return await self._run(owner, _hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str, *, owner: str = "") -> bool:
        """True if ``password`` matches; a missing hash still costs one verification."""
        return await self._run(owner, _check, password_hash, password)

    def _refuse(self, what: str, ahead: int) -> ApiError:
        metrics.AUTH_REFUSED.labels("password_pool").inc()
        # Long enough for the hashes ahead to drain at the measured rate.
        wait = min(_MAX_RETRY_SECONDS, max(0.1, ahead * self._mean_seconds / self._threads))
        text = f"{wait:.3f}"
        return ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{what}; retry in {text} s",
            trailers=(("retry-after", text),),
        )

    async def _run(self, owner: str, fn: Callable[..., T], *args: object) -> T:
        if self._busy >= self._capacity:
            raise self._refuse(
                f"the server is busy checking passwords ({self._busy} in progress)",
                self._busy - self._threads + 1,
            )
        mine = self._owners.get(owner, 0)
        if mine >= self._per_owner:
            raise self._refuse(f"too many password checks in progress from this address ({mine})", mine)
        loop = asyncio.get_running_loop()
        self._busy += 1
        self._owners[owner] = mine + 1

        def job() -> T:
            started = time.monotonic()
            try:
                return fn(*args)
            finally:
                _call_soon(loop, self._observe, time.monotonic() - started)

        future = self._executor.submit(job)
        # Counted free when the thread is done, not when the caller stops waiting: a cancelled
        # call's hash that already started still holds its thread and its 64 MiB.
        future.add_done_callback(lambda _: _call_soon(loop, self._release, owner))
        return await asyncio.wrap_future(future)

    def _release(self, owner: str) -> None:
        self._busy -= 1
        left = self._owners.pop(owner, 1) - 1
        if left > 0:
            self._owners[owner] = left

    def _observe(self, seconds: float) -> None:
        self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds

    def close(self) -> None:
        """Shut the hashing pool down, cancelling hashes not started."""
        self._executor.shutdown(wait=False, cancel_futures=True)
