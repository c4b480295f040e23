"""Circuit breaker states: open after the threshold, half-open after the timeout, closed on success."""

from __future__ import annotations

from connectors.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_half_opens_after_timeout_and_closes_on_success():
    clock = Clock()
    b = CircuitBreaker(name="t", failure_threshold=3, reset_timeout=5, clock=clock)
    for _ in range(2):
        b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allows_call()
    assert b.seconds_until_probe() == 5
    clock.now += 5
    assert b.state is BreakerState.HALF_OPEN and b.allows_call()
    b.record_failure()  # the probe failed: open again, for a full timeout
    assert b.state is BreakerState.OPEN and b.seconds_until_probe() == 5
    clock.now += 5
    assert b.allows_call()  # the probe's check, as BaseConnector.deliver makes it
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0 and b.opened_count == 2
    # The transitions in order, HALF_OPEN included, with non-decreasing wall-clock times.
    assert [state for state, _ in b.transitions] == ["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]
    times = [at for _, at in b.transitions]
    assert times == sorted(times)


def test_the_breaker_keeps_only_its_last_transitions():
    clock = Clock()
    b = CircuitBreaker(name="t", failure_threshold=1, reset_timeout=1, clock=clock)
    for _ in range(30):
        b.record_failure()
        clock.now += 1
        b.record_success()
    assert len(b.transitions) == 20 and b.opened_count == 30
    assert [state for state, _ in b.transitions][-2:] == ["OPEN", "CLOSED"]


def test_a_success_resets_the_failure_count():
    b = CircuitBreaker(name="t", failure_threshold=2, reset_timeout=5, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
