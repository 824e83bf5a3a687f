from __future__ import annotations

from warden.routing.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    b = CircuitBreaker(failures=3, cooldown_s=10, clock=Clock())
    b.failure()
    b.failure()
    b.success()  # resets the run of failures
    b.failure()
    b.failure()
    assert b.state is BreakerState.CLOSED
    b.failure()
    assert b.state is BreakerState.OPEN
    assert not b.available()


def test_half_open_after_cooldown_lets_one_probe_through_then_closes_on_success() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=5, clock=clock)
    b.failure()
    clock.now = 4.9
    assert not b.available()
    assert 0 < b.retry_in() <= 0.1 + 1e-9
    clock.now = 5.0
    assert b.available()
    assert b.state is BreakerState.HALF_OPEN
    b.acquire()
    assert not b.available()  # one probe at a time
    b.success()
    assert b.state is BreakerState.CLOSED
    assert b.available()


def test_failed_probe_reopens_for_another_cooldown() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=5, clock=clock)
    b.failure()
    clock.now = 6
    assert b.available()
    b.acquire()
    b.failure()
    assert b.state is BreakerState.OPEN
    assert b.opened_count == 2
    clock.now = 10
    assert not b.available()
    clock.now = 11
    assert b.available()


def test_needs_several_successful_probes_when_configured() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=1, half_open_probes=2, clock=clock)
    b.failure()
    clock.now = 1
    assert b.available()
    b.acquire()
    b.success()
    assert b.state is BreakerState.HALF_OPEN
    b.acquire()
    b.success()
    assert b.state is BreakerState.CLOSED


def test_a_probe_abandoned_by_the_client_frees_the_slot() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, cooldown_s=1, clock=clock)
    b.failure()
    clock.now = 1
    assert b.available()
    b.acquire()
    assert not b.available()
    b.release()
    assert b.available()
