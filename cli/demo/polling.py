"""Bounded polling of the running system: a value that becomes truthy, or the last value seen at the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(check: Callable[[], T], *, timeout: float, interval: float = 0.25) -> tuple[T, bool]:
    """Call ``check`` every ``interval`` s until it returns something truthy or ``timeout`` s pass.

    Returns the last value and whether it was truthy; errors of ``check`` (a worker that does
    not answer yet) count as not yet.
    """
    deadline = time.monotonic() + timeout
    value: T | None = None
    while True:
        try:
            value = check()
            if value:
                return value, True
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return value, False  # type: ignore[return-value]
        time.sleep(interval)
