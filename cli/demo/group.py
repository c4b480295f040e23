"""The workers' consumer group read from Kafka: which worker (by its web URL) owns which partitions.

Faust's partition assignor puts each member's assignment (active and standby partitions) and
web URL into the group's member assignment, zlib-compressed JSON after Kafka's consumer
protocol header; describing the group therefore shows the assignment without asking a worker.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, field

from chat4all import topic_names as names
from chat4all.settings import Settings
from chat4all.wire import DELIVERY_CHANNELS


def source_topics(settings: Settings) -> list[str]:
    """The topics the workers consume, by their names on the broker (prefix included)."""
    plain = [names.MESSAGES, names.STATUS_UPDATES] + [names.outbound_topic(c) for c in DELIVERY_CHANNELS]
    return [names.topic_name(settings, t) for t in plain]


@dataclass(frozen=True, kw_only=True)
class Member:
    """One worker in the group: its web URL and the partitions it is active and standby for, per topic."""

    url: str
    actives: dict[str, list[int]] = field(default_factory=dict)
    standbys: dict[str, list[int]] = field(default_factory=dict)

    def active(self, topic: str) -> list[int]:
        """This member's active partitions of ``topic`` (sorted)."""
        return sorted(self.actives.get(topic, []))


@dataclass(frozen=True, kw_only=True)
class GroupAssignment:
    """The group's state (``Stable`` once a rebalance is over) and its members."""

    group: str
    state: str
    members: list[Member]

    @property
    def stable(self) -> bool:
        """True when no rebalance is in progress and every member has its assignment."""
        return self.state == "Stable" and all(m.url for m in self.members)

    def member(self, url: str) -> Member | None:
        """The member whose web URL is ``url``, if it is in the group."""
        return next((m for m in self.members if m.url == url), None)

    def owner(self, topic: str, partition: int) -> str | None:
        """The URL of the worker active for ``partition`` of ``topic``."""
        return next((m.url for m in self.members if partition in m.actives.get(topic, [])), None)

    def owners(self, topic: str) -> dict[int, list[str]]:
        """Partition -> URLs of the members active for it (exactly one each in a healthy group)."""
        out: dict[int, list[str]] = {}
        for m in self.members:
            for p in m.actives.get(topic, []):
                out.setdefault(p, []).append(m.url)
        return out


def decode_member_assignment(raw: bytes) -> tuple[str, dict[str, list[int]], dict[str, list[int]]]:
    """(url, actives, standbys) from a faust member assignment; empty while a rebalance is in progress."""
    if not raw:
        return "", {}, {}
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    assignment = ConsumerProtocolMemberAssignment.decode(raw)
    if not assignment.user_data:
        return "", {}, {}
    metadata = json.loads(zlib.decompress(assignment.user_data))
    client = metadata.get("assignment") or {}
    return metadata.get("url", ""), client.get("actives") or {}, client.get("standbys") or {}


async def describe_group(settings: Settings, group_id: str) -> GroupAssignment:
    """The group's state and each member's assignment, from the group coordinator."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    group = response.to_object()["groups"][0]
    members = []
    for m in group["members"]:
        url, actives, standbys = decode_member_assignment(m["member_assignment"])
        members.append(Member(url=url, actives=actives, standbys=standbys))
    return GroupAssignment(group=group["group"], state=group["state"], members=members)


async def _uncommitted(settings: Settings, topics: list[str], partitions: list[int]) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from cli.harness.topics import group_committed

    tps = [TopicPartition(t, p) for t in topics for p in partitions]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    done = await group_committed(settings, settings.app_id, tps)
    return sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items())


def uncommitted(settings: Settings, topics: list[str], partitions: list[int]) -> int:
    """Records of ``partitions`` of ``topics`` the group has not committed yet (end offsets minus committed)."""
    return asyncio.run(_uncommitted(settings, topics, partitions))


def read_assignment(settings: Settings) -> GroupAssignment:
    """The workers' group (``CHAT4ALL_APP_ID``) as it is now."""
    return asyncio.run(describe_group(settings, settings.app_id))


def key_partition(key: str, *, partitions: int) -> int:
    """The partition a record keyed ``key`` lands in: murmur2, as the API's and the workers' producers place it."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def partition_ranges(partitions: list[int]) -> str:
    """Partitions for people: [0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"; "-" when empty."""
    parts = sorted(partitions)
    if not parts:
        return "-"
    out, start, prev = [], parts[0], parts[0]
    for p in parts[1:] + [None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ",".join(out)
