"""Dependency health of a worker (Cassandra, Kafka) and the /health page on its web server."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from faust.web import Request, Response, View

from streams.app import app

logger = logging.getLogger(__name__)


@dataclass
class Health:
    """What the worker knows about its dependencies; agents update it as they succeed or retry."""

    cassandra_ok: bool = True
    cassandra_error: str | None = None
    cassandra_since: float = field(default_factory=time.time)
    roles: list[str] = field(default_factory=list)

    def cassandra_down(self, error: BaseException) -> None:
        if self.cassandra_ok:
            logger.warning("Cassandra unreachable, pausing and retrying: %s", error)
            self.cassandra_since = time.time()
        self.cassandra_ok = False
        self.cassandra_error = f"{type(error).__name__}: {error}"[:300]

    def cassandra_up(self) -> None:
        if not self.cassandra_ok:
            logger.info("Cassandra reachable again after %.1f s", time.time() - self.cassandra_since)
            self.cassandra_since = time.time()
        self.cassandra_ok = True
        self.cassandra_error = None


health = Health()


def _kafka_state() -> dict[str, object]:
    try:
        assignment = app.consumer.assignment()
    except Exception as exc:  # consumer not started yet
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "assigned_partitions": len(assignment), "rebalancing": bool(app.rebalancing)}


@app.page("/health")
class HealthView(View):
    """200 with each dependency's state when healthy, 503 while Cassandra is unreachable."""

    async def get(self, request: Request) -> Response:
        kafka = _kafka_state()
        cassandra = {"ok": health.cassandra_ok, "error": health.cassandra_error, "since": health.cassandra_since}
        healthy = health.cassandra_ok and bool(kafka["ok"])
        body = {"status": "ok" if healthy else "unhealthy", "app_id": app.conf.id, "cassandra": cassandra, "kafka": kafka}
        return self.json(body, status=200 if healthy else 503)


@app.timer(interval=5.0)
async def ping_cassandra() -> None:
    """Keep the Cassandra state fresh on an idle worker (agents update it on every write too)."""
    from streams import cassandra_io

    store = cassandra_io.current_store()
    if store is not None:
        await store.ping()
