"""The agents' record sender (streams/sending.py): order across calls, acks and failures reach the caller's futures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.sending import RecordSender


class _Producer:
    """Stands in for aiokafka's producer: records sends in order; the first send may be held (a full buffer)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.headers: list[list[tuple[str, bytes]] | None] = []
        self.hold_first = asyncio.Event()
        self.hold = False
        self.acks: list[asyncio.Future[Any]] = []

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        if self.hold and not self.sent:
            await self.hold_first.wait()
        if value == b"refused":
            raise ValueError("too large")
        self.sent.append((topic, key, value))
        self.headers.append(headers)
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


class _FaustProducer:
    def __init__(self, producer: _Producer) -> None:
        self._producer = producer

    def _ensure_producer(self) -> _Producer:
        return self._producer


class _App:
    def __init__(self, producer: _Producer) -> None:
        self.producer = _FaustProducer(producer)


class _Topic:
    def get_topic_name(self) -> str:
        return "status-updates"


def test_records_leave_in_call_order_even_when_the_first_call_is_held() -> None:
    async def scenario() -> tuple[list[bytes], list[Any]]:
        producer = _Producer()
        producer.hold = True
        sender = RecordSender(app=_App(producer), direct=True)  # type: ignore[arg-type]
        first = sender.send_soon(_Topic(), [(b"m1", b"DELIVERED-1"), (b"m2", b"DELIVERED-2")])
        second = sender.send_soon(_Topic(), [(b"m1", b"READ-1")])
        await asyncio.sleep(0.01)
        assert producer.sent == []  # the second call waits for the first
        producer.hold_first.set()
        await asyncio.sleep(0.01)
        for n, ack in enumerate(producer.acks):
            ack.set_result(f"offset-{n}")
        results = await asyncio.gather(*first, *second)
        return [value for _, _, value in producer.sent], results

    values, results = asyncio.run(scenario())
    assert values == [b"DELIVERED-1", b"DELIVERED-2", b"READ-1"]
    assert results == ["offset-0", "offset-1", "offset-2"]


def test_a_refused_or_failed_record_fails_its_own_future_only() -> None:
    async def scenario() -> list[Any]:
        producer = _Producer()
        sender = RecordSender(app=_App(producer), direct=True)  # type: ignore[arg-type]
        futures = sender.send_soon(_Topic(), [(b"a", b"ok"), (b"b", b"refused"), (b"c", b"lost")])
        await asyncio.sleep(0.01)
        producer.acks[0].set_result("offset-0")
        producer.acks[1].set_exception(ConnectionError("broker gone"))
        return await asyncio.gather(*futures, return_exceptions=True)

    ok, refused, lost = asyncio.run(scenario())
    assert ok == "offset-0"
    assert isinstance(refused, ValueError)
    assert isinstance(lost, ConnectionError)


def test_records_fail_when_there_is_no_producer_yet() -> None:
    class NotReady(Exception):
        pass

    class Unready(_FaustProducer):
        def _ensure_producer(self) -> _Producer:
            raise NotReady("producer not started")

    async def scenario() -> list[Any]:
        app = _App(_Producer())
        app.producer = Unready(_Producer())
        sender = RecordSender(app=app, direct=True)  # type: ignore[arg-type]
        futures = sender.send_soon(_Topic(), [(b"a", b"one"), (b"b", b"two")])
        last = sender._last
        assert last is not None
        await asyncio.wait([last])
        assert isinstance(last.exception(), NotReady)
        return await asyncio.gather(*futures, return_exceptions=True)

    assert [type(r) for r in asyncio.run(scenario())] == [NotReady, NotReady]


def test_a_faust_without_the_producer_accessor_fails_at_start() -> None:
    class Bare:
        producer = object()

    with pytest.raises(RuntimeError, match="_ensure_producer"):
        RecordSender(app=Bare(), direct=True)  # type: ignore[arg-type]
    assert RecordSender(app=Bare(), direct=False).direct is False  # type: ignore[arg-type]
