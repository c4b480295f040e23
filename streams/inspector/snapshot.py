"""A page's data built at most once per few seconds and shared by every viewer meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import TTLCache


class Snapshot:
    """One build of a page's data, with the renderings of it made so far (HTML, JSON), each made once."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self._rendered: dict[str, str] = {}

    async def rendered(self, kind: str, render: Callable[[dict[str, Any]], str]) -> str:
        """The ``kind`` rendering of the value: ``render(value)`` in a thread on the first call, shared after.

        Viewers arriving while it renders render it too (a rare double rendering, off the loop).
        """
        text = self._rendered.get(kind)
        if text is None:
            text = self._rendered[kind] = await asyncio.to_thread(render, self.value)
        return text


class SharedSnapshot:
    """A page's data, built at most once per ``ttl`` seconds however many viewers ask for it.

    Within ``ttl`` every caller gets the same ``Snapshot``; after it, the first caller builds
    the next one in its own task (so its ``LoopHold`` counts the build) and callers arriving
    meanwhile wait for that build rather than starting their own. A failed build is not kept.
    """

    def __init__(self, *, ttl: float, timer: Callable[[], float] = time.monotonic) -> None:
        self._cache: TTLCache[str, Snapshot] = TTLCache(maxsize=1, ttl=ttl, timer=timer)
        self._building: asyncio.Future[Snapshot] | None = None

    async def get(self, build: Callable[[], Awaitable[dict[str, Any]]]) -> Snapshot:
        """The current snapshot, from ``build()`` when there is none younger than ``ttl``."""
        for _ in range(2):  # a second round only when the build waited for was cancelled
            if (current := self._cache.get("value")) is not None:
                return current
            if self._building is None:
                return await self._build(build)
            building = self._building
            try:
                return await asyncio.shield(building)
            except asyncio.CancelledError:
                if not building.cancelled():  # this caller was cancelled, not the build
                    raise
        return await self._build(build)

    async def _build(self, build: Callable[[], Awaitable[dict[str, Any]]]) -> Snapshot:
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._building = future
        try:
            snapshot = Snapshot(await build())
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting for it
            raise
        else:
            self._cache["value"] = snapshot
            future.set_result(snapshot)
            return snapshot
        finally:
            if self._building is future:
                self._building = None
