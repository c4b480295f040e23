"""The native Chat4All channel: hands the message to the realtime gateway; DELIVERED/READ come from the API."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from connectors.base import BaseConnector
from streams.records import OutboundEvent

logger = logging.getLogger(__name__)


class NativeConnector(BaseConnector):
    """Publishes a ``message.new`` notification for the recipient; the receipt stays SENT.

    DELIVERED comes when the recipient fetches the message (GetMessages), READ from MarkRead:
    both are StatusUpdates the API publishes.
    """

    channel = "native"
    needs_handle = False

    def __init__(self, *, publish: Callable[[OutboundEvent], Awaitable[None]], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self._publish = publish

    async def send(self, event: OutboundEvent) -> None:
        await self._publish(event)
