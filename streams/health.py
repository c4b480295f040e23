"""Dependency health of a worker (Cassandra, Kafka) and the /health page on its web server."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import faust
from faust.web import Request, Response, View

from chat4all.dependency_metrics import DEPENDENCY_UP

logger = logging.getLogger(__name__)


@dataclass
class Health:
    """What the worker knows about its dependencies; agents update it as they succeed or retry."""

    cassandra_ok: bool = True
    cassandra_error: str | None = None
    cassandra_since: float = field(default_factory=time.time)
    roles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        DEPENDENCY_UP.labels("cassandra").set(1 if self.cassandra_ok else 0)

    def cassandra_down(self, error: BaseException) -> None:
        """Record that Cassandra failed with ``error``; logs the first failure of an outage."""
        if self.cassandra_ok:
            logger.warning("Cassandra unreachable, pausing and retrying: %s", error)
            self.cassandra_since = time.time()
            DEPENDENCY_UP.labels("cassandra").set(0)
        self.cassandra_ok = False
        self.cassandra_error = f"{type(error).__name__}: {error}"[:300]

    def cassandra_up(self) -> None:
        """Record that Cassandra answered again; logs how long the outage lasted."""
        if not self.cassandra_ok:
            logger.info("Cassandra reachable again after %.1f s", time.time() - self.cassandra_since)
            self.cassandra_since = time.time()
            DEPENDENCY_UP.labels("cassandra").set(1)
        self.cassandra_ok = True
        self.cassandra_error = None


def kafka_state(app: faust.App) -> dict[str, object]:
    """The worker's Kafka consumer: whether it runs, partitions assigned, whether a rebalance is under way."""
    try:
        assignment = app.consumer.assignment()
    except Exception as exc:  # consumer not started yet
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "assigned_partitions": len(assignment), "rebalancing": bool(app.rebalancing)}


def install_health_page(app: faust.App, health: Health) -> None:
    """/health on the worker's web server: 200 with each dependency's state, 503 while Cassandra is unreachable."""

    class HealthView(View):
        async def get(self, request: Request) -> Response:
            kafka = kafka_state(app)
            cassandra = {
                "ok": health.cassandra_ok,
                "error": health.cassandra_error,
                "since": health.cassandra_since,
            }
            healthy = health.cassandra_ok and bool(kafka["ok"])
            body = {
                "status": "ok" if healthy else "unhealthy",
                "app_id": app.conf.id,
                "roles": health.roles,
                "cassandra": cassandra,
                "kafka": kafka,
            }
            return self.json(body, status=200 if healthy else 503)

    app.page("/health")(HealthView)
