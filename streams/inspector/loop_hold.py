"""How long a page held the event loop: the longest stretch its code ran between two suspensions.

The pages share the agents' event loop, so what matters is not how long a page takes (it
waits for RocksDB reads in a thread, the broker, Cassandra, another worker) but how long it
runs without yielding. ``LoopHold`` drives a coroutine step by step and times each step,
in CPU time of the loop's thread (what other processes on the machine take from it does not
count) and in wall time, and how much of that step was garbage collection (a collection runs
on whichever step allocates past the collector's threshold, and walks the whole process's
heap, not the page's). Views report it in the ``Server-Timing`` header.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from streams.gc_pauses import PAUSES

T = TypeVar("T")


class LoopHold:
    """The longest synchronous stretch (CPU and wall seconds) of the steps measured with it."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self.gc = 0.0  # CPU seconds of garbage collection within the step of ``cpu``

    def measure(self, step: Callable[..., T], *args: Any) -> T:
        """Run ``step(*args)`` (synchronous: all of it holds the loop) and count it."""
        wall, cpu, gc = time.perf_counter(), time.thread_time(), PAUSES.thread_seconds()
        try:
            return step(*args)
        finally:
            held = time.thread_time() - cpu
            if held >= self.cpu:
                self.cpu, self.gc = held, PAUSES.thread_seconds() - gc
            self.wall = max(self.wall, time.perf_counter() - wall)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` (a page's coroutine), counting each of its steps between suspensions."""
        return await _Stepped(awaitable, self)

    def server_timing(self) -> str:
        """The ``Server-Timing`` header value: ``loop`` (CPU ms), ``loop-gc`` (its collections) and ``loop-wall``."""
        return (
            f'loop;dur={self.cpu * 1000:.2f};desc="longest run on the event loop (CPU)", '
            f'loop-gc;dur={self.gc * 1000:.2f};desc="garbage collection within that run (CPU)", '
            f'loop-wall;dur={self.wall * 1000:.2f};desc="longest run on the event loop (wall)"'
        )


class _Stepped:
    """An awaitable that forwards every step of a coroutine to the task driving it, timing each."""

    def __init__(self, awaitable: Awaitable[Any], hold: LoopHold) -> None:
        self._awaitable = awaitable
        self._hold = hold

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self._awaitable.__await__()
        step: Callable[[Any], Any] = inner.send
        arg: Any = None
        while True:
            try:
                yielded = self._hold.measure(step, arg)
            except StopIteration as done:
                return done.value
            try:
                arg = yield yielded
                step = inner.send
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:  # cancellation and the like go to the coroutine, as await would
                arg, step = exc, inner.throw
