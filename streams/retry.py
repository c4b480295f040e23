"""The one retry helper of the pipeline: exponential backoff with jitter, and retry-until-it-works for outages."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delay(attempt: int, *, first: float, largest: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): ``first * 2**(attempt-1)`` capped at ``largest``, "equal jitter".

    Half the delay is fixed and half random, so retries of many callers spread out
    but still back off.
    """
    rng = rng or random
    ceiling = min(largest, first * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


async def retry_forever(
    operation: Callable[[], Awaitable[T]],
    *,
    is_outage: Callable[[BaseException], bool],
    first: float = 0.1,
    largest: float = 5.0,
    on_retry: Callable[[BaseException, int], None] | None = None,
    on_success: Callable[[], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, backing off between attempts while ``is_outage(error)``.

    Errors that are not outages are raised at once: a bad record is not retried.
    """
    attempt = 0
    while True:
        try:
            result = await operation()
        except Exception as exc:
            if not is_outage(exc):
                raise
            attempt += 1
            if on_retry is not None:
                on_retry(exc, attempt)
            await asyncio.sleep(backoff_delay(attempt, first=first, largest=largest))
        else:
            if on_success is not None:
                on_success()
            return result
