"""Produce requests that carry every waiting batch of a broker, not only the batches whose linger ran out.

aiokafka lingers per partition: a request to a broker takes only the partitions whose own
linger expired, and the next one leaves as soon as another partition's does. A worker
writes to about 80 partitions (outbound, status-updates, notifications and four
changelogs, 12 partitions each), so at 300 msg/s its batches expire at staggered moments
and it sent about 200 produce requests a second, each a socket write, a broker request
and a response to parse. Kafka's Java producer drains every partition of a broker once
one of them is ready; so does this patch of ``MessageAccumulator.drain_by_nodes``. Order
and delivery are unchanged: a partition still has at most one batch in flight, and a
batch leaves no later than its linger.
"""

from __future__ import annotations

import collections
from typing import Any

from aiokafka.errors import LeaderNotAvailableError, NotLeaderForPartitionError
from aiokafka.producer.message_accumulator import MessageAccumulator

# The accumulator's private names the patched method reads; checked at install.
PRIVATE_NAMES = ("_batches", "_cluster", "_pop_batch", "_waiter_future", "_wakeup_handle", "_loop", "_wakeup")
_original = MessageAccumulator.drain_by_nodes


def drain_by_nodes(self: Any, ignore_nodes: Any, muted_partitions: Any = frozenset()) -> tuple[dict[int, dict[Any, Any]], bool]:
    """aiokafka's drain_by_nodes, except that a broker with one ready batch takes all its batches."""
    batches = self._batches
    cluster = self._cluster
    leaders: dict[Any, Any] = {}
    ready_nodes = set()
    for tp, queue in batches.items():
        if tp in muted_partitions:
            continue
        leader = leaders[tp] = cluster.leader_for_partition(tp)
        if leader is not None and leader != -1 and not queue[0].remaining_linger():
            ready_nodes.add(leader)

    nodes: dict[int, dict[Any, Any]] = collections.defaultdict(dict)
    unknown_leaders_exist = False
    remaining_linger_time = None
    for tp in list(batches.keys()):
        if tp in muted_partitions:
            continue
        leader = leaders.get(tp)
        if leader is None or leader == -1:
            if batches[tp][0].expired():
                batch = self._pop_batch(tp)
                batch.failure(exception=NotLeaderForPartitionError() if leader is None else LeaderNotAvailableError())
            unknown_leaders_exist = True
            continue
        if ignore_nodes and leader in ignore_nodes:
            continue
        if leader not in ready_nodes:
            linger = batches[tp][0].remaining_linger()
            if linger:
                remaining_linger_time = min(remaining_linger_time, linger) if remaining_linger_time else linger
                continue
        batch = self._pop_batch(tp)
        if not batch.is_empty():
            nodes[leader][tp] = batch
        else:
            batch.done_noack()

    if not self._waiter_future.done():
        self._waiter_future.set_result(None)
    self._waiter_future = self._loop.create_future()
    if self._wakeup_handle:
        self._wakeup_handle.cancel()
        self._wakeup_handle = None
    if remaining_linger_time:
        self._wakeup_handle = self._loop.call_later(remaining_linger_time, self._wakeup, self._waiter_future)
    return nodes, unknown_leaders_exist


def check() -> None:
    """Fail at start-up if aiokafka no longer has what the patch relies on (a pinned version changed)."""
    probe = MessageAccumulator.__init__.__code__.co_names + tuple(vars(MessageAccumulator))
    missing = [name for name in PRIVATE_NAMES if name not in probe]
    if missing:
        raise RuntimeError(f"aiokafka's MessageAccumulator lacks {missing}: chat4all/producing.py needs updating")


def install() -> None:
    """Patch every producer of this process (idempotent)."""
    check()
    MessageAccumulator.drain_by_nodes = drain_by_nodes  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore aiokafka's own method (tests)."""
    MessageAccumulator.drain_by_nodes = _original  # type: ignore[method-assign]
