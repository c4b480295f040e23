"""Faust topic handles for the pipeline, named and sized by chat4all.topics (one list for stack and app)."""

from __future__ import annotations

import faust

from chat4all import topics as names
from chat4all.settings import get_settings
from streams import metrics, takeover
from streams.app import app

_settings = get_settings()
_partitions = _settings.topic_partitions


def _topic(name: str) -> faust.TopicT:
    # Values are read raw and decoded by the agents: a record that does not parse is
    # dead-lettered with its reason instead of crashing the stream, and connector topics
    # also carry the scheduler's tick records.
    # The prefix is empty in production; a test run or a benchmark sets it to get topics of its own.
    return app.topic(names.topic_name(_settings, name), key_serializer="raw", value_serializer="raw", partitions=_partitions)


messages_topic = _topic(names.MESSAGES)
status_updates_topic = _topic(names.STATUS_UPDATES)
notifications_topic = _topic(names.NOTIFICATIONS)
dead_letters_topic = _topic(names.DEAD_LETTERS)
outbound_topics: dict[str, faust.TopicT] = {c: _topic(names.outbound_topic(c)) for c in names.CHANNELS}


SOURCE_TOPICS = frozenset(
    t.get_topic_name() for t in (messages_topic, status_updates_topic, *outbound_topics.values())
)

# See streams/takeover.py: three record-loss paths at partition takeover (never-committed
# partitions, batches made stale by a seek, queues cleared after the final seek).
takeover.install(is_source_topic=SOURCE_TOPICS.__contains__,
                on_stale=lambda tp: metrics.stale_records_skipped.labels(tp.topic).inc())
