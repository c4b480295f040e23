"""Pipelined event handling: an agent decides per event in order, its I/O runs in the background, the ack waits for it.

Why: awaiting each event's Cassandra write and broker acks in the agent loop caps an agent
at one round trip per event (about 40 events/s measured). Here the agent loop does what
must happen in the event's order and context (table reads and writes, the decision), then
hands the slow part to a task and moves on. The event is acked only when its task is done,
and an offset is committed only once every event below it is acked (faust's own rule lets
a commit pass one unacked offset, or any number during a revoke; streams/takeover.py, fix
5, makes it hold), so at-least-once holds: after a crash every event whose I/O had not
finished is processed again. At a commit faust also flushes the
producer first, so the records a finished task sent are on the broker before its offset
is committed.

Tasks are created inside the loop body, so they copy the event's context (faust's
``current_event`` is a context variable): a table write in a task would land in the
event's partition. The agents here still write tables only in the loop, in order.

Order: tasks given the same ``order_key`` run their ``then`` step in submission order (the
router sends a conversation's outbound records in the conversation's order, the tracker
sends one message's notifications in order), while their ``io`` steps overlap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chat4all import tracing
from streams import event_spans

logger = logging.getLogger(__name__)

Step = Callable[[], Awaitable[Any]]


def awaiting(futures: list[Any]) -> Step:
    """A ``then`` step that waits for these broker acks (the event is acked after them)."""

    async def acked() -> None:
        for fut in futures:
            await fut

    return acked


class InFlight:
    """Background I/O of one agent with manual acks; at most ``limit`` events in flight (default 512).

    ``submit`` waits while ``limit`` events are in flight: the agent stops pulling events,
    so a slow Cassandra or broker backs up into Kafka, not into memory. An error escaping
    a task is re-raised by the next ``submit`` or ``drain`` (the agent crashes as it would
    have inline), and that event is never acked.
    """

    def __init__(
        self, *, name: str, limit: int = 512, on_done: Callable[[float], None] | None = None
    ) -> None:
        self.name = name
        self._on_done = on_done
        self._slots = asyncio.Semaphore(limit)
        self._tails: dict[Any, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._error: BaseException | None = None

    @property
    def in_flight(self) -> int:
        """How many submitted events are still running."""
        return len(self._tasks)

    async def submit(
        self, event: Any, io: Step | None = None, then: Step | None = None, *, order_key: Any = None
    ) -> None:
        """Run ``io`` then ``then`` in the background and ack ``event`` when both are done.

        With neither step the event is acked at once (in order with nothing: faust only
        commits consecutive offsets, so an early ack never lets a commit skip pending work).
        """
        self._raise_pending()
        # The event's span (streams/event_spans.py) ends when the event is acked.
        span = event_spans.take() if tracing.ENABLED else None
        if io is None and then is None:
            event.ack()
            if span is not None:
                span.end()
            if self._on_done is not None:
                self._on_done(0.0)
            return
        await self._slots.acquire()
        previous = self._tails.get(order_key) if order_key is not None else None
        task = asyncio.ensure_future(self._run(io, then, previous))
        if order_key is not None:
            self._tails[order_key] = task
        self._tasks.add(task)
        started = time.monotonic()
        task.add_done_callback(lambda t: self._done(t, event, order_key, started, span))

    async def _run(self, io: Step | None, then: Step | None, previous: asyncio.Future | None) -> None:
        if io is not None:
            await io()
        if previous is not None and not previous.done():
            # Only the order matters here; the previous task's own error surfaces through it.
            await asyncio.wait([previous])
        if then is not None:
            await then()

    def _done(self, task: asyncio.Task, event: Any, order_key: Any, started: float, span: Any) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if order_key is not None and self._tails.get(order_key) is task:
            del self._tails[order_key]
        if task.cancelled():
            if span is not None:
                span.end()
            return
        exc = task.exception()
        if span is not None:
            if exc is not None:
                tracing.fail(span, exc)
            span.end()
        if exc is not None:
            logger.error(
                "%s: background step failed, the event stays unacked: %r", self.name, exc, exc_info=exc
            )
            if self._error is None:
                self._error = exc
            return
        event.ack()
        if self._on_done is not None:
            self._on_done(time.monotonic() - started)

    def _raise_pending(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    async def drain(self) -> None:
        """Wait for every task in flight (tests; a stopping agent)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))
        self._raise_pending()
