"""WhatsApp and Instagram simulators: a send that may fail (failure injection), then DELIVERED and READ later."""

from __future__ import annotations

import logging

from chat4all.wire import Channel, OutboundEvent, Status
from connectors.base import BaseConnector, ScheduledStatus

logger = logging.getLogger(__name__)


class SimulatedNetworkConnector(BaseConnector):
    """A provider reached over the network: accepts the message, reports DELIVERED after 100-500 ms.

    READ is scheduled when DELIVERED fires (2-5 s after it), see agents/connectors.py.
    The delays are not slept: they go into the durable schedule.
    """

    async def send(self, event: OutboundEvent) -> None:
        """Accept the message, as the provider would (failures come from failure injection only)."""
        # A real provider call goes here; the simulator only fails when failure injection says so.
        logger.debug(
            "%s accepted message for %s", self.channel, event.handle, extra={"message_id": event.message_id}
        )

    def after_send(self, event: OutboundEvent, *, now_ms: int) -> list[ScheduledStatus]:
        """DELIVERED, due ``delivered_delay_ms`` (a random delay in that range) after ``now_ms``."""
        low, high = self.config.delivered_delay_ms
        return [ScheduledStatus(status=Status.DELIVERED, due_ms=now_ms + self.rng.randint(low, high))]

    def read_delay_ms(self) -> int:
        """How long after DELIVERED the simulated recipient reads the message."""
        low, high = self.config.read_delay_ms
        return self.rng.randint(low, high)


class WhatsAppConnector(SimulatedNetworkConnector):
    """WhatsApp simulator (handle = phone number)."""

    channel = Channel.WHATSAPP


class InstagramConnector(SimulatedNetworkConnector):
    """Instagram simulator (handle = username)."""

    channel = Channel.INSTAGRAM
