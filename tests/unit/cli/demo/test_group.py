"""The consumer group's assignment as `chat4all demo` reads it: faust's member assignment decoded, partitions shown."""

from __future__ import annotations

import json
import zlib

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.partitioner import DefaultPartitioner

from cli.demo.group import GroupAssignment, Member, decode_member_assignment, key_partition, partition_ranges


def _faust_assignment(url: str, actives: dict[str, list[int]], standbys: dict[str, list[int]]) -> bytes:
    """A member assignment as faust's PartitionAssignor encodes it (Kafka's header, zlib'd JSON user data)."""
    metadata = {
        "assignment": {"actives": actives, "standbys": standbys},
        "url": url,
        "changelog_distribution": {},
        "external_topic_distribution": {},
        "topic_groups": {},
    }
    protocol = sorted(actives.items())
    return ConsumerProtocolMemberAssignment(
        0, protocol, zlib.compress(json.dumps(metadata).encode())
    ).encode()


def test_a_faust_member_assignment_decodes_to_its_url_actives_and_standbys():
    raw = _faust_assignment(
        "http://127.0.0.1:6066", {"messages": [0, 1, 2], "status-updates": [0, 1, 2]}, {"x-changelog": [3]}
    )
    url, actives, standbys = decode_member_assignment(raw)
    assert url == "http://127.0.0.1:6066"
    assert actives == {"messages": [0, 1, 2], "status-updates": [0, 1, 2]}
    assert standbys == {"x-changelog": [3]}


def test_a_member_without_an_assignment_yet_decodes_to_nothing():
    assert decode_member_assignment(b"") == ("", {}, {})
    empty = ConsumerProtocolMemberAssignment(0, [], b"").encode()
    assert decode_member_assignment(empty) == ("", {}, {})


def test_owners_and_stability_of_a_group():
    a = Member(url="http://a", actives={"t": [0, 1]})
    b = Member(url="http://b", actives={"t": [2, 1]})
    group = GroupAssignment(group="g", state="Stable", members=[a, b])
    assert group.stable and group.owner("t", 2) == "http://b" and group.owner("t", 9) is None
    assert group.owners("t") == {0: ["http://a"], 1: ["http://a", "http://b"], 2: ["http://b"]}
    assert group.member("http://b") is b and b.active("t") == [1, 2]
    assert not GroupAssignment(group="g", state="PreparingRebalance", members=[a]).stable
    assert not GroupAssignment(group="g", state="Stable", members=[Member(url="")]).stable


def test_partitions_are_shown_as_ranges():
    assert partition_ranges([]) == "-"
    assert partition_ranges([5]) == "5"
    assert partition_ranges([7, 0, 1, 2, 5, 8]) == "0-2,5,7-8"
    assert partition_ranges(list(range(12))) == "0-11"


def test_a_key_lands_where_aiokafkas_default_partitioner_puts_it():
    partitioner = DefaultPartitioner()
    parts = list(range(12))
    for key in ("01a232c8-8def-7d15-af80-c71dda1e39e3", "alice", "x" * 100):
        assert key_partition(key, partitions=12) == partitioner(key.encode(), parts, parts)
