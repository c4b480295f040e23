"""grpc.health.v1 status that follows the API's dependencies (Cassandra, Kafka, Redis)."""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2

from api.deps import ApiDeps
from chat4all.dependency_metrics import DEPENDENCY_UP

logger = logging.getLogger(__name__)

_INTERVAL_SECONDS = 5.0


async def check_dependencies(deps: ApiDeps) -> dict[str, bool]:
    """Whether each dependency answers now (connects lazily if it was down)."""
    timeout = deps.settings.api_storage_timeout_seconds
    state: dict[str, bool] = {}
    try:
        await deps.cassandra.ping()
        state["cassandra"] = True
    except Exception:
        state["cassandra"] = False
    try:
        producer = await deps.publisher.producer(timeout)
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
        state["kafka"] = True
    except Exception:
        state["kafka"] = False
    try:
        await asyncio.wait_for(deps.redis.ping(), timeout)
        state["redis"] = True
    except Exception:
        state["redis"] = False
    return state


async def watch_dependencies(deps: ApiDeps, servicer: health.aio.HealthServicer, services: list[str]) -> None:
    """Every few seconds: SERVING while every dependency answers, NOT_SERVING otherwise."""
    last: bool | None = None
    while True:
        state = await check_dependencies(deps)
        for dependency, reached in state.items():
            DEPENDENCY_UP.labels(dependency).set(1 if reached else 0)
        ok = all(state.values())
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *services):
            await servicer.set(name, status)
        if ok != last:
            logger.log(logging.INFO if ok else logging.WARNING, "dependencies: %s", state)
            last = ok
        await asyncio.sleep(_INTERVAL_SECONDS)
