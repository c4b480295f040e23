"""Failure injection for demos and tests: a share of sends fail, or all of them (an outage); changeable at run time."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class FaultInjector:
    """Decides whether a simulated send fails. Starts from settings; the worker's /connectors/faults page changes it."""

    error_rate: float = 0.0
    outage: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def should_fail(self) -> str | None:
        """The injected failure's description, or None when the send may succeed."""
        if self.outage:
            return "injected outage"
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            return "injected send error"
        return None

    def update(self, *, error_rate: float | None = None, outage: bool | None = None) -> None:
        """Change the error rate (clamped to 0..1) and/or the outage switch; a None argument keeps its value."""
        if error_rate is not None:
            self.error_rate = min(1.0, max(0.0, float(error_rate)))
        if outage is not None:
            self.outage = bool(outage)
        logger.warning("fault injection now error_rate=%.3f outage=%s", self.error_rate, self.outage)
