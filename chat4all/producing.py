"""Cheaper produce paths for aiokafka: requests that carry every waiting batch of a broker, and partitions looked up once.

aiokafka lingers per partition: a request to a broker takes only the partitions whose own
linger expired, and the next one leaves as soon as another partition's does. A worker
writes to about 80 partitions (outbound, status-updates, notifications and four
changelogs, 12 partitions each), so at 300 msg/s its batches expire at staggered moments
and it sent about 200 produce requests a second, each a socket write, a broker request
and a response to parse. Kafka's Java producer drains every partition of a broker once
one of them is ready; so does this patch of ``MessageAccumulator.drain_by_nodes``. Order
and delivery are unchanged: a partition still has at most one batch in flight, and a
batch leaves no later than its linger.

Every send also asked the cluster metadata for the topic's partitions twice (a new set and
list each time) and hashed its key with aiokafka's pure-Python murmur2: about half of
``AIOKafkaProducer.send`` in a profile of the worker. The patched ``_partition`` and
``_wait_on_metadata`` read the partitions from a cache that is dropped whenever a metadata
update replaces the cluster's partition map; ``CachedPartitioner`` remembers each key's hash.
The partition chosen for a key is exactly aiokafka's (and the Java client's).
"""

from __future__ import annotations

import collections
import random
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import LeaderNotAvailableError, NotLeaderForPartitionError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.producer.producer import AIOKafkaProducer

# The accumulator's private names the patched method reads; checked at install.
PRIVATE_NAMES = ("_batches", "_cluster", "_pop_batch", "_waiter_future", "_wakeup_handle", "_loop", "_wakeup")
_original = MessageAccumulator.drain_by_nodes
_original_partition = AIOKafkaProducer._partition
_original_wait_on_metadata = AIOKafkaClient._wait_on_metadata


class CachedPartitioner:
    """aiokafka's default partitioning (Java-compatible murmur2 of the key), with each key's hash remembered.

    murmur2 is pure Python in aiokafka (a few microseconds a key), and the platform keys
    records by conversation, message and user: the same keys over and over.
    """

    def __init__(self, *, size: int = 100_000) -> None:
        self._size = size
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """The partition of ``key`` among ``all_partitions``; a random available one when there is no key."""
        if key is None:
            return random.choice(available or all_partitions)
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self._size:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[h % len(all_partitions)]


def topic_partitions(
    cluster: ClusterMetadata, topic: str
) -> tuple[frozenset[int], list[int], list[int]] | None:
    """(partitions, the same as aiokafka lists them, those with a leader) of ``topic``; None while unknown."""
    partitions_map = cluster._partitions
    cache = cluster.__dict__.get("_chat4all_partitions")
    if cache is None or cache[0] is not partitions_map:
        # update_metadata replaces the map: whatever was cached before may be stale.
        cache = cluster._chat4all_partitions = (partitions_map, {})  # type: ignore[attr-defined]
    entry = cache[1].get(topic)
    if entry is None:
        members = cluster.partitions_for_topic(topic)
        if not members:
            return None
        entry = cache[1][topic] = (
            frozenset(members),
            list(members),
            list(cluster.available_partitions_for_topic(topic) or ()),
        )
    return entry


def _partition(
    self: Any,
    topic: str,
    partition: int | None,
    key: Any,
    value: Any,
    serialized_key: bytes | None,
    serialized_value: bytes | None,
) -> int:
    cached = topic_partitions(self._metadata, topic)
    if cached is None:
        return _original_partition(self, topic, partition, key, value, serialized_key, serialized_value)
    members, ordered, available = cached
    if partition is not None:
        assert partition >= 0
        assert partition in members, "Unrecognized partition"
        return partition
    return self._partitioner(serialized_key, ordered, available)


async def _wait_on_metadata(self: Any, topic: str) -> Any:
    cached = topic_partitions(self.cluster, topic)
    if cached is not None:
        return cached[0]
    return await _original_wait_on_metadata(self, topic)


def drain_by_nodes(
    self: Any, ignore_nodes: Any, muted_partitions: Any = frozenset()
) -> tuple[dict[int, dict[Any, Any]], bool]:
    """The accumulator's ``drain_by_nodes`` from aiokafka, except that a broker with one ready batch takes all its batches."""
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
                batch.failure(
                    exception=NotLeaderForPartitionError() if leader is None else LeaderNotAvailableError()
                )
            unknown_leaders_exist = True
            continue
        if ignore_nodes and leader in ignore_nodes:
            continue
        if leader not in ready_nodes:
            linger = batches[tp][0].remaining_linger()
            if linger:
                remaining_linger_time = (
                    min(remaining_linger_time, linger) if remaining_linger_time else linger
                )
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
    """Fail at start-up if aiokafka no longer has what the patches rely on (a pinned version changed)."""
    needed = {
        MessageAccumulator: (PRIVATE_NAMES, MessageAccumulator.__init__),
        ClusterMetadata: (
            ("_partitions", "partitions_for_topic", "available_partitions_for_topic"),
            ClusterMetadata.__init__,
        ),
        AIOKafkaProducer: (("_partition", "_metadata", "_partitioner"), AIOKafkaProducer.__init__),
        AIOKafkaClient: (("_wait_on_metadata", "cluster"), AIOKafkaClient.__init__),
    }
    for cls, (names, init) in needed.items():
        probe = set(init.__code__.co_names) | set(vars(cls))
        missing = [name for name in names if name not in probe]
        if missing:
            raise RuntimeError(
                f"aiokafka's {cls.__name__} lacks {missing}: chat4all/producing.py needs updating"
            )


def install(*, drain_by_broker: bool = True) -> None:
    """Patch every producer of this process (idempotent); ``drain_by_broker`` False keeps aiokafka's per-partition drain."""
    check()
    MessageAccumulator.drain_by_nodes = drain_by_nodes if drain_by_broker else _original  # type: ignore[method-assign]
    AIOKafkaProducer._partition = _partition  # type: ignore[method-assign]
    AIOKafkaClient._wait_on_metadata = _wait_on_metadata  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore aiokafka's own methods (tests)."""
    MessageAccumulator.drain_by_nodes = _original  # type: ignore[method-assign]
    AIOKafkaProducer._partition = _original_partition  # type: ignore[method-assign]
    AIOKafkaClient._wait_on_metadata = _original_wait_on_metadata  # type: ignore[method-assign]
