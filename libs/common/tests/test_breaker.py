import pytest

from kestrel.common.breaker import CircuitBreaker, CircuitOpenError, State
from kestrel.common.errors import UnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, failures: int = 3, reset_s: float = 2.0) -> CircuitBreaker:
    return CircuitBreaker("triton", failures=failures, reset_s=reset_s, clock=clock)


def fail(b: CircuitBreaker, n: int, error: str = "connection refused") -> None:
    for _ in range(n):
        b.check()
        b.failure(error)


def test_opens_after_consecutive_failures_only():
    b = breaker(Clock())
    fail(b, 2)
    b.check()
    b.success()  # resets the count
    fail(b, 2)
    assert b.state is State.CLOSED
    fail(b, 1)
    assert b.state is State.OPEN


def test_open_circuit_refuses_with_the_last_error_and_a_retry_hint():
    clock = Clock()
    b = breaker(clock)
    fail(b, 3, "StatusCode.UNAVAILABLE: failed to connect")
    clock.now += 0.5
    with pytest.raises(CircuitOpenError) as info:
        b.check()
    assert isinstance(info.value, UnavailableError)
    assert "failed to connect" in str(info.value) and "3 consecutive failures" in str(info.value)
    assert info.value.retry_in_s == pytest.approx(1.5)


def test_half_open_lets_exactly_one_trial_through_and_success_closes():
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 2.0
    b.check()  # the trial
    assert b.state is State.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        b.check()  # a concurrent caller while the trial is out
    b.success()
    assert b.state is State.CLOSED
    b.check()
    b.check()


def test_failed_trial_reopens_for_a_full_period():
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 2.0
    b.check()
    b.failure("still down")
    assert b.state is State.OPEN
    clock.now += 1.9
    with pytest.raises(CircuitOpenError, match="still down"):
        b.check()
    clock.now += 0.1
    b.check()
    assert b.state is State.HALF_OPEN


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", reset_s=0)
