"""The connector template's retries, invalid records and outages (BaseConnector.deliver, through the WhatsApp simulator)."""

from __future__ import annotations

import asyncio
import random

from chat4all.wire import OutboundEvent
from connectors.base import ConnectorConfig
from connectors.breaker import BreakerState
from connectors.faults import FaultInjector
from connectors.simulators import WhatsAppConnector


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
