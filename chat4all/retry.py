"""The one retry helper of the project: backoff delays, retry-until-it-works for outages, bounded retries.

Our own rather than tenacity: `retry_forever` wraps every Cassandra call on the worker's hot path,
where this loop costs one try block until a call fails, while tenacity copies its retrying object
and builds a retry state for each call; and the connectors draw their jitter from a seeded
`random.Random`, which tenacity's random waits do not take. Three small functions serve the
pipeline (`retry_forever`, `backoff_delay`) and the CLI (`retry`) alike.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

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


def retry(
    operation: Callable[[int], T],
    *,
    attempts: int,
    retryable: Callable[[Exception], bool],
    delay: Callable[[Exception, int], float],
    on_retry: Callable[[Exception, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``operation(attempt)`` (1-based) up to ``attempts`` times; blocking, for the CLI.

    After an error that is ``retryable``, ``on_retry(error, attempt)`` runs and the caller sleeps
    ``delay(error, attempt)`` seconds before the next attempt. Any other error, and the error of
    the last attempt, is raised.
    """
    for attempt in range(1, attempts + 1):
        try:
            return operation(attempt)
        except Exception as exc:
            if attempt == attempts or not retryable(exc):
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
            sleep(delay(exc, attempt))
    raise ValueError(f"attempts must be at least 1, not {attempts}")
