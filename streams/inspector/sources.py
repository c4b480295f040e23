"""What the worker hands the inspector: its health, role, Cassandra access and the connectors' state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chat4all.settings import Settings
from streams.cassandra_io import PipelineRepository
from streams.health import Health


@dataclass(frozen=True, kw_only=True)
class InspectorSources:
    """The worker's parts the pages read; ``connectors_state`` is None on a worker without the connectors role.

    ``connectors_state`` returns the breaker state per channel and the injected faults (the
    /connectors page's body); it is handed in because streams/ may not import connectors/.
    """

    settings: Settings
    health: Health
    role: str
    cassandra: Callable[[], Awaitable[PipelineRepository]] | None = None
    connectors_state: Callable[[], dict[str, Any]] | None = None
