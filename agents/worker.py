"""Assembles a worker from settings: the app, the takeover fixes, the role's agents and tables, health and metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import faust

from agents.connectors import Connectors
from agents.router import Router
from agents.status_tracker import StatusTracker
from chat4all import producing
from chat4all.clock import Clock, now_ms
from chat4all.settings import Settings
from streams import fetching, metrics, takeover
from streams.app import create_app
from streams.cassandra_io import PipelineRepositoryProvider
from streams.context import AgentContext, RepositoryProvider
from streams.dead_letters import DeadLetters
from streams.gc_pauses import PAUSES, freeze_heap
from streams.health import Health, install_health_page
from streams.inspector.sources import InspectorSources
from streams.inspector.views import install_inspector
from streams.pipeline_topics import PipelineTopics
from streams.scrape_target import install_scrape_target
from streams.sending import RecordSender
from tables.options import install_memory_budget

logger = logging.getLogger(__name__)

Role = Literal["router", "connectors", "status", "all"]
ROLES: tuple[str, ...] = ("router", "connectors", "status", "all")


@dataclass
class PipelineWorker:
    """A worker's app and what runs on it; only the role's parts are set.

    A worker subscribes only to the topics and changelogs of its own role: faust's assignor
    groups co-subscribed topics, so a table's changelog follows the agent that writes it
    even when workers of different roles share one consumer group.
    """

    app: faust.App
    ctx: AgentContext
    role: str
    router: Router | None = None
    connectors: Connectors | None = None
    status_tracker: StatusTracker | None = None
    parts: list[str] = field(default_factory=list)


def build_worker(
    settings: Settings,
    *,
    role: Role = "all",
    cassandra: RepositoryProvider | None = None,
    clock: Clock = now_ms,
    web: bool = True,
) -> PipelineWorker:
    """The app of one worker of ``role`` (router, connectors, status or all), ready for ``faust.Worker``.

    ``cassandra`` defaults to the real Cassandra repository (connected when the first agent starts);
    ``web=False`` leaves out the Prometheus sensor and the /health page (unit tests build
    many apps in one process; the sensor registers globally).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    app = create_app(settings)
    topics = PipelineTopics.create(app, settings)
    # Table changelog records (and the schedule's receipts) wait in faust's producer buffer;
    # past max_messages (faust: 100) every agent pauses while it drains, logging a warning
    # each time: hundreds a minute at 300 msg/s. A firing of due receipts alone can exceed it.
    app.producer.buffer.max_messages = settings.producer_buffer_max_messages
    # See streams/takeover.py: five record-loss paths at partition takeover (never-committed
    # partitions, batches made stale by a seek, queues cleared after the final seek, records
    # dropped below a stale read offset, commits past events in flight).
    takeover.install(
        is_source_topic=topics.source_names.__contains__,
        on_stale=lambda tp: metrics.stale_records_skipped.labels(tp.topic).inc(),
    )
    for source in topics.source_names:  # at 0 from the start, so a takeover panel has a series to plot
        metrics.stale_records_skipped.labels(source)
    install_memory_budget(settings)
    fetching.install(
        min_bytes=settings.consumer_fetch_min_bytes, max_wait_ms=settings.consumer_fetch_max_wait_ms
    )
    producing.install(drain_by_broker=settings.producer_drain_by_broker)
    health = Health(roles=[role])
    provider = PipelineRepositoryProvider(settings=settings, health=health) if cassandra is None else None
    ctx = AgentContext(
        app=app,
        settings=settings,
        topics=topics,
        cassandra=cassandra or provider,  # type: ignore[arg-type]
        sender=RecordSender(app=app, direct=settings.processing_guarantee == "at_least_once"),
        dead_letters=DeadLetters(topic=topics.dead_letters, clock=clock),
        health=health,
        clock=clock,
    )
    worker = PipelineWorker(app=app, ctx=ctx, role=role)
    if role in ("router", "all"):
        worker.router = Router(ctx)
        worker.parts.append("router")
    if role in ("connectors", "all"):
        worker.connectors = Connectors(ctx)
        worker.parts.append("connectors")
    if role in ("status", "all"):
        worker.status_tracker = StatusTracker(ctx)
        worker.parts.append("status-tracker")
    if web:
        install_health_page(app, health)
        metrics.install_metrics(app)
        # The table inspector (/ui/); the connectors' state is handed in: streams/ imports no connector.
        install_inspector(
            app,
            InspectorSources(
                settings=settings,
                health=health,
                role=role,
                cassandra=ctx.cassandra,
                connectors_state=worker.connectors.state if worker.connectors else None,
            ),
        )
        install_scrape_target(app, settings, role=role)
    PAUSES.install()
    if settings.gc_freeze:

        @app.task
        async def freeze_startup_heap() -> None:
            """Freeze what start-up built (streams/gc_pauses.py); runs once, when the app has started."""
            freeze_heap()

    if provider is not None:

        @app.timer(interval=5.0)
        async def ping_cassandra() -> None:
            """Keep the Cassandra state fresh on an idle worker (agents update it on every write too)."""
            current = provider.current
            if current is not None:
                await current.ping()

    logger.info("worker role %s: %s", role, ", ".join(worker.parts))
    return worker
