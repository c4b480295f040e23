"""Wall-clock time as the wire format carries it: integer milliseconds since the epoch."""

from __future__ import annotations

import time
from collections.abc import Callable

# What agents are given to tell the time (tests pass a fake one).
Clock = Callable[[], int]


def now_ms() -> int:
    """Milliseconds since the epoch, now."""
    return int(time.time() * 1000)
