"""Faust topic handles of one pipeline app, named and sized by chat4all.topic_names (one list for stack and app)."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from chat4all import topic_names as names
from chat4all.settings import Settings
from chat4all.wire import DELIVERY_CHANNELS


@dataclass(frozen=True, kw_only=True)
class PipelineTopics:
    """The topics an app reads and writes; values are raw bytes, decoded by the agents."""

    messages: faust.TopicT
    status_updates: faust.TopicT
    notifications: faust.TopicT
    dead_letters: faust.TopicT
    outbound: dict[str, faust.TopicT]

    @classmethod
    def create(cls, app: faust.App, settings: Settings) -> PipelineTopics:
        """The topic handles of ``app``, named with the settings' prefix and sized by ``topic_partitions``."""

        def topic(name: str) -> faust.TopicT:
            # Values are read raw and decoded by the agents: a record that does not parse is
            # dead-lettered with its reason instead of crashing the stream, and connector topics
            # also carry the scheduler's tick records. The prefix is empty in production; a
            # test run or a benchmark sets it to get topics of its own.
            return app.topic(
                names.topic_name(settings, name),
                key_serializer="raw",
                value_serializer="raw",
                partitions=settings.topic_partitions,
            )

        return cls(
            messages=topic(names.MESSAGES),
            status_updates=topic(names.STATUS_UPDATES),
            notifications=topic(names.NOTIFICATIONS),
            dead_letters=topic(names.DEAD_LETTERS),
            outbound={c: topic(names.outbound_topic(c)) for c in DELIVERY_CHANNELS},
        )

    @property
    def source_names(self) -> frozenset[str]:
        """Names of the topics agents consume (takeover fixes apply to these)."""
        return frozenset(
            t.get_topic_name() for t in (self.messages, self.status_updates, *self.outbound.values())
        )

    def all(self) -> list[faust.TopicT]:
        """Every topic of the pipeline, the outbound topics of all channels included."""
        return [
            self.messages,
            self.status_updates,
            self.notifications,
            self.dead_letters,
            *self.outbound.values(),
        ]
