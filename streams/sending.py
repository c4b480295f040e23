"""The agents' own records onto their topics: through aiokafka's producer directly at at-least-once, through faust's topics in transactions.

A record sent through a faust topic passes faust's send machinery (a FutureMessage and a
PendingMessage, its producer buffer, codec and sensor hooks, then aiokafka): about 85 µs of
CPU per record against 50 µs through the same aiokafka producer directly
(`bench/faust_floor.py --variants consume,produce,produce-raw`). The agents send five
records per message (outbound, two receipts, two notifications) and wait for each
broker ack themselves before an event is acked (streams/inflight.py), so at at-least-once
nothing faust adds is needed: they go through the aiokafka producer that faust created
(its flush before a commit covers them, its batches carry the tables' changelog records
too). Under exactly-once, records must be part of the partition's transaction: faust's
topics then, as before.

With tracing on, every record sent inside a sampled span carries that span's context in its
headers (chat4all/trace_headers.py), unless the caller gives headers of its own; outside one, none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import faust

from chat4all import trace_headers, tracing
from chat4all.trace_headers import Headers

# faust's private producer accessor, checked at start-up.
PRODUCER_ACCESSOR = "_ensure_producer"


class RecordSender:
    """Sends records of the agents; every method returns futures that resolve with the broker's ack."""

    def __init__(self, *, app: faust.App, direct: bool) -> None:
        self._app = app
        self.direct = direct
        self._last: asyncio.Future[Any] | None = None
        if direct and not callable(getattr(type(app.producer), PRODUCER_ACCESSOR, None)):
            raise RuntimeError(
                f"faust's Producer lacks {PRODUCER_ACCESSOR}: streams/sending.py needs updating"
            )

    def _producer(self) -> Any:
        return getattr(self._app.producer, PRODUCER_ACCESSOR)()

    async def send(
        self,
        topic: faust.TopicT,
        *,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> Any:
        """Queue one record (in the caller's order); returns the future of its ack.

        ``headers`` default to the current trace context's while tracing is on, none while off.
        """
        if headers is None and tracing.ENABLED:
            headers = trace_headers.inject()
        if not self.direct:
            return await topic.send(key=key, value=value, partition=partition, headers=headers)
        return await self._producer().send(
            topic.get_topic_name(), value, key=key, partition=partition, headers=headers
        )

    def send_soon(
        self,
        topic: faust.TopicT,
        records: Iterable[tuple[bytes | None, bytes]],
        *,
        headers: Sequence[Headers | None] | None = None,
    ) -> list[asyncio.Future[Any]]:
        """Queue records without waiting (the caller holds an event context and may not yield); one future per record.

        The records leave in the order of the calls: each call's records are queued by a task
        that first waits for the previous call's task, which has almost always finished.
        ``headers``: one entry per record (its trace context), or None for the current trace
        context's on every record while tracing is on.
        """
        records = list(records)
        if headers is None:
            current = trace_headers.inject() if tracing.ENABLED else None
            headers = [current] * len(records)
        if not self.direct:
            sent = (
                topic.send_soon(key=k, value=v, headers=h) for (k, v), h in zip(records, headers, strict=True)
            )
            return [f for f in sent if f is not None]
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in records]
        self._last = asyncio.ensure_future(
            self._queue(topic.get_topic_name(), records, headers, futures, self._last)
        )
        return futures

    async def _queue(
        self,
        topic: str,
        records: list[tuple[bytes | None, bytes]],
        headers: Sequence[Headers | None],
        futures: list[asyncio.Future[Any]],
        previous: asyncio.Future[Any] | None,
    ) -> None:
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            producer = self._producer()
            for (key, value), record_headers, outcome in zip(records, headers, futures, strict=True):
                try:
                    acked = await producer.send(topic, value, key=key, headers=record_headers)
                except Exception as exc:
                    outcome.set_exception(exc)
                    continue
                acked.add_done_callback(lambda done, outcome=outcome: _copy(done, outcome))
        except BaseException as exc:
            # No producer yet, or cancelled part-way: every record not queued fails, so its
            # caller sees it (a fired bucket then fires again) instead of waiting forever.
            for outcome in futures:
                if not outcome.done():
                    outcome.set_exception(
                        exc if isinstance(exc, Exception) else ConnectionError("send cancelled")
                    )
            raise


def _copy(done: asyncio.Future[Any], outcome: asyncio.Future[Any]) -> None:
    if outcome.done():
        return
    if done.cancelled():
        outcome.cancel()
    elif (exc := done.exception()) is not None:
        outcome.set_exception(exc)
    else:
        outcome.set_result(done.result())
