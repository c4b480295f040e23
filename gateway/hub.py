"""In-process fan-out of live events to the subscriptions of the users connected here."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from chat4all.wire import Notification


class SubscriptionOverflow(Exception):
    """The client fell too far behind; it must reconnect and catch up with GetMessages."""


class Subscription:
    """One connected client: a bounded queue of events, closed when the client is too slow."""

    def __init__(self, *, user_id: str, maxsize: int) -> None:
        self.user_id = user_id
        self._queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def offer(self, event: Notification) -> bool:
        """Queue ``event`` for the client; False once the subscription overflowed (its queue was full)."""
        # Never block the consumer loop on one slow client: drop the client instead.
        if self.overflowed:
            return False
        try:
            self._queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.overflowed = True
            return False

    async def next(self) -> Notification:
        """The next event; SubscriptionOverflow once an overflowed subscription's queue is empty."""
        if self.overflowed and self._queue.empty():
            raise SubscriptionOverflow(f"client of user {self.user_id} fell behind")
        event = await self._queue.get()
        return event


class Hub:
    """Subscriptions by user id; `dispatch` hands an event to every subscription of its user."""

    def __init__(self, *, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, user_id: str) -> Subscription:
        """A new subscription of ``user_id``, with a queue of the hub's size."""
        sub = Subscription(user_id=user_id, maxsize=self._queue_size)
        self._subs[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription (safe to call twice)."""
        subs = self._subs.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]

    def connected(self, user_id: str) -> int:
        """How many subscriptions ``user_id`` has here."""
        return len(self._subs.get(user_id, ()))

    def dispatch(self, event: Notification) -> int:
        """How many subscriptions took the event."""
        return sum(sub.offer(event) for sub in list(self._subs.get(event.user_id, ())))
