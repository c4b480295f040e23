"""The native Chat4All channel: hands the message to the realtime gateway; DELIVERED/READ come from the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chat4all.wire import Channel, OutboundEvent
from connectors.base import BaseConnector


class NativeConnector(BaseConnector):
    """Publishes a ``message.new`` notification for the recipient; the receipt stays SENT.

    DELIVERED comes when the recipient fetches the message (GetMessages), READ from MarkRead:
    both are StatusUpdates the API publishes.
    """

    channel = Channel.NATIVE
    needs_handle = False

    def __init__(self, *, publish: Callable[[OutboundEvent], Awaitable[None]], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self._publish = publish

    async def send(self, event: OutboundEvent) -> None:
        """Publish the recipient's ``message.new`` notification for the realtime gateway."""
        await self._publish(event)
