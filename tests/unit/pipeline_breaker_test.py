"""Circuit breaker states and the connector template's retry/outage behaviour."""

from __future__ import annotations

import asyncio
import random

from chat4all.retry import backoff_delay
from chat4all.wire import OutboundEvent
from connectors.base import ConnectorConfig
from connectors.breaker import BreakerState, CircuitBreaker
from connectors.faults import FaultInjector
from connectors.simulators import WhatsAppConnector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_half_opens_after_timeout_and_closes_on_success():
    clock = Clock()
    b = CircuitBreaker(name="t", failure_threshold=3, reset_timeout=5, clock=clock)
    for _ in range(2):
        b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allows_call()
    assert b.seconds_until_probe() == 5
    clock.now += 5
    assert b.state is BreakerState.HALF_OPEN and b.allows_call()
    b.record_failure()  # the probe failed: open again, for a full timeout
    assert b.state is BreakerState.OPEN and b.seconds_until_probe() == 5
    clock.now += 5
    assert b.allows_call()  # the probe's check, as BaseConnector.deliver makes it
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0 and b.opened_count == 2
    # The transitions in order, HALF_OPEN included, with non-decreasing wall-clock times.
    assert [state for state, _ in b.transitions] == ["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]
    times = [at for _, at in b.transitions]
    assert times == sorted(times)


def test_the_breaker_keeps_only_its_last_transitions():
    clock = Clock()
    b = CircuitBreaker(name="t", failure_threshold=1, reset_timeout=1, clock=clock)
    for _ in range(30):
        b.record_failure()
        clock.now += 1
        b.record_success()
    assert len(b.transitions) == 20 and b.opened_count == 30
    assert [state for state, _ in b.transitions][-2:] == ["OPEN", "CLOSED"]


def test_a_success_resets_the_failure_count():
    b = CircuitBreaker(name="t", failure_threshold=2, reset_timeout=5, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    delays = [backoff_delay(n, first=0.1, largest=1.0, rng=rng) for n in range(1, 7)]
    assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2 and 0.2 <= delays[2] <= 0.4
    assert all(0.5 <= d <= 1.0 for d in delays[4:])


def _event(handle="+1") -> OutboundEvent:
    return OutboundEvent(
        message_id="m",
        conversation_id="c",
        sender_id="s",
        ts_ms=1,
        recipient_id="r",
        channel="whatsapp",
        handle=handle,
    )


def _connector(faults: FaultInjector, **cfg) -> WhatsAppConnector:
    config = ConnectorConfig(
        max_attempts=3,
        backoff_first=0.001,
        backoff_largest=0.002,
        breaker_failure_threshold=10,
        breaker_reset_timeout=0.05,
        **cfg,
    )
    return WhatsAppConnector(config=config, faults=faults, rng=random.Random(3))


async def test_send_errors_are_retried_then_the_recipient_fails():
    result = await _connector(FaultInjector(error_rate=1.0)).deliver(_event())
    assert not result.sent and result.attempts == 3 and "gave up" in (result.reason or "")


async def test_a_record_without_handle_fails_without_retries():
    result = await _connector(FaultInjector()).deliver(_event(handle=None))
    assert not result.sent and result.attempts == 0 and result.reason.startswith("invalid")


async def test_an_outage_holds_the_record_instead_of_failing_it():
    faults = FaultInjector(outage=True)
    connector = _connector(faults)
    connector.breaker.failure_threshold = 2
    task = asyncio.ensure_future(connector.deliver(_event()))
    await asyncio.sleep(0.3)
    assert not task.done() and connector.breaker.opened_count >= 1  # probes keep failing, record held
    faults.update(outage=False)
    result = await asyncio.wait_for(task, 2)
    assert result.sent and connector.breaker.state is BreakerState.CLOSED
    assert connector.after_send(_event(), now_ms=0)[0].status == "DELIVERED"
