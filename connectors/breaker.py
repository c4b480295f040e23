"""A circuit breaker: CLOSED -> OPEN after consecutive failures, HALF_OPEN probe after a pause, CLOSED on success."""

from __future__ import annotations

import collections
import enum
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Transitions a breaker remembers: enough for an operator (or `chat4all demo`) to see the last
# OPEN -> HALF_OPEN -> CLOSED cycles, which a poll of ``state`` alone misses (HALF_OPEN lasts one probe).
TRANSITIONS_KEPT = 20


class BreakerState(enum.Enum):
    """Where a breaker stands: CLOSED lets calls through, OPEN stops them, HALF_OPEN lets one probe by."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Stops calls to a failing channel for ``reset_timeout`` seconds after ``failure_threshold`` failures in a row.

    After the pause one call is let through (HALF_OPEN): success closes the breaker, failure
    opens it again. ``clock`` (default time.monotonic) is injectable for tests; ``transitions``
    keeps the last TRANSITIONS_KEPT changes as (state name, wall-clock time in seconds).
    """

    def __init__(
        self,
        *,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self.opened_count = 0
        self.transitions: collections.deque[tuple[str, float]] = collections.deque(maxlen=TRANSITIONS_KEPT)

    @property
    def state(self) -> BreakerState:
        """The breaker's state now; an OPEN breaker whose pause is over turns HALF_OPEN when read."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures in a row since the last success."""
        return self._failures

    def seconds_until_probe(self) -> float:
        """How long until a call may be tried again (0 when CLOSED or HALF_OPEN)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def allows_call(self) -> bool:
        """True unless the breaker is OPEN."""
        return self.state is not BreakerState.OPEN

    def record_success(self) -> None:
        """Count a successful call: resets the failures and closes the breaker."""
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """Count a failed call: opens the breaker at the threshold, or at once when it was HALF_OPEN."""
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            if self._state is not BreakerState.OPEN:
                self.opened_count += 1
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        logger.warning("circuit breaker %s: %s -> %s", self.name, self._state.name, state.name)
        self._state = state
        self.transitions.append((state.name, time.time()))
        if self._on_change is not None:
            self._on_change(self.name, state)
