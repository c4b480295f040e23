"""streams/inspector/snapshot.py: one build per ttl shared by every viewer, a new one after it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.inspector.snapshot import SharedSnapshot


class Clock:
    """A timer the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Builds:
    """A page build that counts its calls and can be held open until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await self.release.wait()
        return {"build": self.calls}


async def test_viewers_within_the_ttl_share_one_build_and_one_rendering() -> None:
    clock, build = Clock(), Builds()
    shared = SharedSnapshot(ttl=2.0, timer=clock)
    first = await shared.get(build)
    clock.now += 1.9
    again = await shared.get(build)
    assert again is first and build.calls == 1
    renders: list[int] = []

    def render(data: dict[str, Any]) -> str:
        renders.append(data["build"])
        return f"<p>{data['build']}</p>"

    assert await first.rendered("html", render) == await again.rendered("html", render) == "<p>1</p>"
    assert renders == [1]


async def test_after_the_ttl_the_next_viewer_builds_a_new_snapshot() -> None:
    clock, build = Clock(), Builds()
    shared = SharedSnapshot(ttl=2.0, timer=clock)
    first = await shared.get(build)
    clock.now += 2.1
    second = await shared.get(build)
    assert second is not first and second.value == {"build": 2} and build.calls == 2
    assert await second.rendered("html", lambda d: "new") == "new"


async def test_viewers_arriving_during_a_build_wait_for_it_rather_than_building() -> None:
    build = Builds()
    build.release.clear()
    shared = SharedSnapshot(ttl=2.0, timer=Clock())
    viewers = [asyncio.create_task(shared.get(build)) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert build.calls == 1
    build.release.set()
    got = await asyncio.gather(*viewers)
    assert all(s is got[0] for s in got) and build.calls == 1


async def test_a_failed_build_is_not_kept_and_its_waiters_see_the_error() -> None:
    calls = 0
    gate = asyncio.Event()

    async def failing() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await gate.wait()
        if calls == 1:
            raise RuntimeError("broker away")
        return {"ok": True}

    shared = SharedSnapshot(ttl=2.0, timer=Clock())
    first, waiter = asyncio.create_task(shared.get(failing)), None
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(shared.get(failing))
    await asyncio.sleep(0.01)
    gate.set()
    for task in (first, waiter):
        with pytest.raises(RuntimeError):
            await task
    assert (await shared.get(failing)).value == {"ok": True} and calls == 2


async def test_a_cancelled_builder_leaves_its_waiters_to_build_for_themselves() -> None:
    build = Builds()
    build.release.clear()
    shared = SharedSnapshot(ttl=2.0, timer=Clock())
    builder = asyncio.create_task(shared.get(build))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(shared.get(build))
    await asyncio.sleep(0.01)
    builder.cancel()
    await asyncio.sleep(0.01)
    build.release.set()
    assert (await waiter).value == {"build": 2}
    with pytest.raises(asyncio.CancelledError):
        await builder
