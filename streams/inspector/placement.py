"""Which partition holds a table key: each table's own placement, not faust's hash of the serialized key.

faust's router (``app.router.key_store``) hashes the key as the changelog serializes it (JSON,
quotes included), but a table entry lives in the partition of the event that wrote it:

- ``receipt-states`` and ``receipt-finals`` are written by the status tracker in the
  `status-updates` partition of the message id (murmur2 of its UTF-8 bytes, as every
  producer of the platform partitions keys);
- ``router-routed`` is keyed by message id but written by the router in the `messages`
  partition of the message's *conversation* id;
- ``<channel>-schedule`` keys carry their partition (``p<partition>:b:<bucket>``,
  tables/durable_schedule.py);
- a windowed table's key is a tuple ``(key, (window_start, window_end))``: its partition is
  the inner key's.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from aiokafka.partitioner import murmur2

SCHEDULE_SUFFIX = "-schedule"
_CARRIED = re.compile(r"^p(\d+):")


class Placement(enum.Enum):
    """How a table chooses the partition of a key."""

    MESSAGE = "the status-updates partition of the message id"
    CONVERSATION = "the messages partition of the message's conversation id"
    CARRIED = "the partition written in the key (p<partition>:...)"


class UnknownPartition(LookupError):
    """The key does not say its partition, and what would say it is missing."""


def placement_of(table_name: str) -> Placement:
    """The placement of ``table_name`` (tables/: dedup, receipt_states, scheduled_receipts)."""
    if table_name == "router-routed":
        return Placement.CONVERSATION
    if table_name.endswith(SCHEDULE_SUFFIX):
        return Placement.CARRIED
    return Placement.MESSAGE


def key_partition(key: str, partitions: int) -> int:
    """The partition of a record keyed by ``key`` (aiokafka's and the Java client's murmur2 of UTF-8 bytes)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def carried_partition(key: str) -> int | None:
    """The partition a ``p<partition>:...`` key carries, or None."""
    found = _CARRIED.match(key)
    return int(found.group(1)) if found else None


def inner_key(key: Any) -> Any:
    """The key a window belongs to: the first element of a windowed ``(key, window)`` tuple."""
    while isinstance(key, (tuple, list)) and key:
        key = key[0]
    return key


def partition_of(table_name: str, key: Any, *, partitions: int, conversation_id: str | None = None) -> int:
    """The partition holding ``key`` in ``table_name``; ``conversation_id`` is needed for router-routed.

    Raises UnknownPartition when the key does not say it (a schedule key without ``p<n>:``,
    a router-routed key without its conversation).
    """
    inner = str(inner_key(key))
    placement = placement_of(table_name)
    if placement is Placement.CARRIED:
        found = carried_partition(inner)
        if found is None or found >= partitions:
            raise UnknownPartition(f"{table_name} keys look like p<partition>:b:<bucket>, not {inner!r}")
        return found
    if placement is Placement.CONVERSATION:
        if not conversation_id:
            raise UnknownPartition(f"{table_name} places {inner!r} by its message's conversation, unknown")
        return key_partition(conversation_id, partitions)
    return key_partition(inner, partitions)
