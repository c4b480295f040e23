"""What every agent of a worker is given: the app, settings, topics, a record sender, Cassandra, dead letters and a clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import faust

from chat4all.clock import Clock
from chat4all.settings import Settings
from streams.cassandra_io import PipelineRepository
from streams.dead_letters import DeadLetters
from streams.health import Health
from streams.pipeline_topics import PipelineTopics
from streams.sending import RecordSender

# Connects on first call (waiting out an outage); tests pass an in-memory stand-in.
RepositoryProvider = Callable[[], Awaitable[PipelineRepository]]


@dataclass(frozen=True, kw_only=True)
class AgentContext:
    """The dependencies of the agents, built once per worker by agents/worker.py."""

    app: faust.App
    settings: Settings
    topics: PipelineTopics
    sender: RecordSender
    cassandra: RepositoryProvider
    dead_letters: DeadLetters
    health: Health
    clock: Clock
