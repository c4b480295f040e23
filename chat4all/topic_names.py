"""Topic names and their retention: one list shared by `stack up`, the API and the Faust app."""

from __future__ import annotations

from dataclasses import dataclass

from chat4all.settings import Settings
from chat4all.wire import DELIVERY_CHANNELS

MESSAGES = "messages"
STATUS_UPDATES = "status-updates"
NOTIFICATIONS = "notifications"
DEAD_LETTERS = "dead-letters"


def topic_name(settings: Settings, name: str) -> str:
    """The topic's name on the broker: ``CHAT4ALL_TOPIC_PREFIX`` + name (isolated runs, benchmarks)."""
    return settings.topic_prefix + name


def outbound_topic(channel: str) -> str:
    """The topic a channel's connector reads, e.g. ``whatsapp-outbound``."""
    return f"{channel}-outbound"


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """A topic's name (without the prefix), partition count and retention."""

    name: str
    partitions: int
    retention_ms: int


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the platform uses, with the partition count the Faust app expects."""
    hour = 3600 * 1000
    long_ms = settings.messages_retention_hours * hour
    short_ms = settings.outbound_retention_hours * hour
    parts = settings.topic_partitions
    specs = [
        TopicSpec(name=MESSAGES, partitions=parts, retention_ms=long_ms),
        TopicSpec(name=STATUS_UPDATES, partitions=parts, retention_ms=long_ms),
        TopicSpec(name=NOTIFICATIONS, partitions=parts, retention_ms=short_ms),
        TopicSpec(name=DEAD_LETTERS, partitions=parts, retention_ms=long_ms),
    ]
    specs += [
        TopicSpec(name=outbound_topic(c), partitions=parts, retention_ms=short_ms) for c in DELIVERY_CHANNELS
    ]
    return specs
