"""streams/inspector/loop_hold.py: a page's longest run on the event loop, not its time waiting."""

from __future__ import annotations

import asyncio
import time

import pytest

from streams.inspector.loop_hold import LoopHold


def busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def page(*, runs: list[float], wait: float) -> str:
    for run in runs:
        busy(run)
        await asyncio.sleep(wait)
    return "done"


async def test_the_longest_run_between_awaits_counts_not_the_sum_nor_the_waits() -> None:
    hold = LoopHold()
    assert await hold.run(page(runs=[0.005, 0.03, 0.005], wait=0.05)) == "done"
    assert 0.03 <= hold.cpu < 0.045, hold.cpu
    assert hold.wall >= 0.03, hold.wall  # wall time also counts what the machine took from the thread


async def test_a_page_that_only_waits_holds_the_loop_for_almost_nothing() -> None:
    hold = LoopHold()
    await hold.run(page(runs=[0, 0, 0], wait=0.05))
    # A wait is 50 ms: counting one would show here.
    assert hold.cpu < 0.005 and hold.wall < 0.05, (hold.cpu, hold.wall)


async def test_other_tasks_run_while_the_page_waits() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        await LoopHold().run(page(runs=[0], wait=0.1))
    finally:
        task.cancel()
    assert ticks >= 5


async def test_errors_and_cancellation_reach_the_page_as_with_a_plain_await() -> None:
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad key")

    with pytest.raises(ValueError, match="bad key"):
        await LoopHold().run(failing())
    cleaned = asyncio.Event()

    async def waiting() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.set()

    task = asyncio.create_task(LoopHold().run(waiting()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


def test_a_synchronous_step_counts_in_full_and_the_header_reports_milliseconds() -> None:
    hold = LoopHold()
    assert hold.measure(lambda: busy(0.01) or "html") == "html"
    assert hold.cpu >= 0.01
    header = hold.server_timing()
    assert header.startswith(f"loop;dur={hold.cpu * 1000:.2f};") and "loop-wall;dur=" in header
