"""chat4all.retry: bounded attempts, the caller's delay per error, other errors at once; backoff delays."""

from __future__ import annotations

import random

import pytest

from chat4all.retry import backoff_delay, retry


class Busy(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after


def test_retries_until_success_sleeping_the_delay_the_error_asks_for() -> None:
    slept: list[float] = []
    seen: list[int] = []

    def operation(attempt: int) -> str:
        seen.append(attempt)
        if attempt < 3:
            raise Busy(retry_after=attempt * 1.5)
        return "ok"

    result = retry(
        operation,
        attempts=5,
        retryable=lambda e: isinstance(e, Busy),
        delay=lambda e, _: e.retry_after,
        sleep=slept.append,
    )
    assert result == "ok"
    assert seen == [1, 2, 3]
    assert slept == [1.5, 3.0]


def test_the_last_attempts_error_is_raised_after_attempts_calls() -> None:
    calls: list[int] = []
    retried: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise Busy(retry_after=0)

    with pytest.raises(Busy):
        retry(
            operation,
            attempts=3,
            retryable=lambda e: True,
            delay=lambda e, n: 0.5 * n,
            on_retry=lambda e, n: retried.append(n),
            sleep=lambda _: None,
        )
    assert calls == [1, 2, 3]
    assert retried == [1, 2]  # no sleep nor on_retry after the last attempt


def test_an_error_that_is_not_retryable_is_raised_at_once() -> None:
    calls: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise KeyError("bad input")

    with pytest.raises(KeyError):
        retry(
            operation,
            attempts=20,
            retryable=lambda e: isinstance(e, Busy),
            delay=lambda e, n: 1.0,
            sleep=lambda _: pytest.fail("slept"),
        )
    assert calls == [1]


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    delays = [backoff_delay(n, first=0.1, largest=1.0, rng=rng) for n in range(1, 7)]
    assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2 and 0.2 <= delays[2] <= 0.4
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
