"""BaseConnector: the template every channel follows (validate, breaker, send with retries, follow-ups)."""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chat4all.retry import backoff_delay
from chat4all.wire import OutboundEvent
from connectors.breaker import BreakerState, CircuitBreaker
from connectors.faults import FaultInjector

logger = logging.getLogger(__name__)


class ConnectorError(Exception):
    """A send that failed and may succeed if tried again (network, provider error)."""


class InvalidOutbound(ValueError):
    """A record this channel can never send (e.g. no handle): fail it at once, no retries."""


@dataclass
class DeliveryResult:
    """How a delivery ended: sent, or given up on with the last error; attempts counts real tries."""

    sent: bool
    attempts: int
    reason: str | None = None


@dataclass
class ScheduledStatus:
    """A receipt the simulated network will report later (DELIVERED, then READ)."""

    status: str
    due_ms: int


@dataclass
class ConnectorConfig:
    """Retry and breaker knobs (defaults mirror settings)."""

    max_attempts: int = 5
    backoff_first: float = 0.02
    backoff_largest: float = 1.0
    breaker_failure_threshold: int = 5
    breaker_reset_timeout: float = 5.0
    delivered_delay_ms: tuple[int, int] = (100, 500)
    read_delay_ms: tuple[int, int] = (2000, 5000)
    extra: dict[str, Any] = field(default_factory=dict)


class BaseConnector(abc.ABC):
    """A channel connector. Subclasses set ``channel`` and implement ``send``; everything else is shared.

    ``deliver`` is the template method: validate -> (wait while the breaker is OPEN) ->
    send -> on error back off and retry. Failures while the breaker is OPEN are the
    channel's outage, not this record's: they do not use up its attempts, so an outage
    holds records back (in Kafka) instead of failing them.
    """

    channel: ClassVar[str]
    needs_handle: ClassVar[bool] = True

    def __init__(
        self,
        *,
        config: ConnectorConfig,
        faults: FaultInjector,
        rng: random.Random | None = None,
        on_attempt: Callable[[str, str], None] | None = None,
        on_breaker_change: Callable[[str, BreakerState], None] | None = None,
        on_call_seconds: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.faults = faults
        self.rng = rng or random.Random()
        self._on_attempt = on_attempt
        self._on_call_seconds = on_call_seconds
        self.breaker = CircuitBreaker(
            name=self.channel,
            failure_threshold=config.breaker_failure_threshold,
            reset_timeout=config.breaker_reset_timeout,
            on_change=on_breaker_change,
        )

    def validate(self, event: OutboundEvent) -> None:
        """Raise InvalidOutbound if this record can never be sent on this channel."""
        if event.channel != self.channel:
            raise InvalidOutbound(f"record for channel {event.channel!r} on {self.channel!r} connector")
        if self.needs_handle and not event.handle:
            raise InvalidOutbound(f"recipient has no {self.channel} handle")

    @abc.abstractmethod
    async def send(self, event: OutboundEvent) -> None:
        """Hand the message to the channel; raise ConnectorError on a failure worth retrying."""

    def after_send(self, event: OutboundEvent, *, now_ms: int) -> list[ScheduledStatus]:
        """Receipts the channel will report later (none by default)."""
        return []

    def _injected_failure(self) -> None:
        failure = self.faults.should_fail()
        if failure is not None:
            raise ConnectorError(failure)

    async def deliver(self, event: OutboundEvent) -> DeliveryResult:
        """Send ``event`` with the breaker and retries; never raises for channel errors."""
        try:
            self.validate(event)
        except InvalidOutbound as exc:
            return DeliveryResult(sent=False, attempts=0, reason=f"invalid: {exc}")
        attempts = 0
        while True:
            wait = self.breaker.seconds_until_probe()
            if wait > 0:
                # The channel is down: hold this record (and the partition behind it) until a probe is due.
                await asyncio.sleep(wait)
                continue
            started = time.perf_counter()
            try:
                self._injected_failure()
                await self.send(event)
            except ConnectorError as exc:
                self._timed(started)
                self.breaker.record_failure()
                self._count("error")
                if self.breaker.state is BreakerState.OPEN:
                    logger.warning(
                        "%s send failed, breaker open, holding: %s",
                        self.channel,
                        exc,
                        extra={"message_id": event.message_id, "channel": self.channel},
                    )
                    continue
                attempts += 1
                if attempts >= self.config.max_attempts:
                    return DeliveryResult(
                        sent=False, attempts=attempts, reason=f"gave up after {attempts} attempts: {exc}"
                    )
                await asyncio.sleep(
                    backoff_delay(
                        attempts,
                        first=self.config.backoff_first,
                        largest=self.config.backoff_largest,
                        rng=self.rng,
                    )
                )
            else:
                self._timed(started)
                self.breaker.record_success()
                self._count("sent")
                return DeliveryResult(sent=True, attempts=attempts + 1)

    def _timed(self, started: float) -> None:
        if self._on_call_seconds is not None:
            self._on_call_seconds(time.perf_counter() - started)

    def _count(self, outcome: str) -> None:
        if self._on_attempt is not None:
            self._on_attempt(self.channel, outcome)
