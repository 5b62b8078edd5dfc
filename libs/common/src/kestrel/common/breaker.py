"""A circuit breaker for calls to a dependency (Triton, a registry): fail fast while it is down, probe to recover.

closed: calls go through; `failures` consecutive failures open the circuit.
open: calls are refused at once (no socket, no deadline spent) for `reset_s`.
half-open: after `reset_s` one trial call goes through; success closes the circuit, failure reopens it.
Concurrent callers during half-open are refused until the trial settles, so a recovering server is not stampeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

import structlog
from prometheus_client import Counter, Gauge

from kestrel.common.errors import UnavailableError

log = structlog.get_logger()

STATE = Gauge("kestrel_circuit_state", "Circuit state: 0 closed, 1 half-open, 2 open", ["circuit"])
OPENED = Counter("kestrel_circuit_opened_total", "Times the circuit opened", ["circuit"])
REFUSED = Counter("kestrel_circuit_refused_total", "Calls refused while the circuit was open", ["circuit"])


class State(Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpenError(UnavailableError):
    """Refused without trying: the dependency failed recently. Safe to retry after `retry_in_s`."""

    def __init__(self, message: str, retry_in_s: float) -> None:
        super().__init__(message)
        self.retry_in_s = retry_in_s


class CircuitBreaker:
    def __init__(
        self, name: str, *, failures: int = 5, reset_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError("failures must be >= 1 and reset_s > 0")
        self.name = name
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._trial = False
        self.state = State.CLOSED
        self.last_error = ""
        STATE.labels(name).set(0)

    def check(self) -> None:
        """Call before each attempt: returns when it may proceed, raises CircuitOpenError otherwise.
        Every call that passes must be followed by exactly one success() or failure()."""
        if self.state is State.CLOSED:
            return
        if self.state is State.OPEN:
            wait = self._opened_at + self._reset_s - self._clock()
            if wait > 0:
                self._refuse(wait)
            self._set(State.HALF_OPEN)
        if self._trial:  # half-open with the trial call still out
            self._refuse(self._reset_s)
        self._trial = True

    def success(self) -> None:
        self._failures = 0
        self._trial = False
        if self.state is not State.CLOSED:
            log.info("circuit_closed", circuit=self.name)
            self._set(State.CLOSED)

    def abandon(self) -> None:
        """The attempt ended without a verdict (the caller was cancelled): free the half-open trial slot."""
        self._trial = False

    def failure(self, error: str) -> None:
        self.last_error = error
        self._failures += 1
        self._trial = False
        if self.state is State.HALF_OPEN or (self.state is State.CLOSED and self._failures >= self._threshold):
            self._opened_at = self._clock()
            if self.state is State.CLOSED:
                OPENED.labels(self.name).inc()
                log.warning("circuit_opened", circuit=self.name, failures=self._failures, error=error)
            self._set(State.OPEN)

    def _refuse(self, retry_in_s: float) -> None:
        REFUSED.labels(self.name).inc()
        raise CircuitOpenError(
            f"{self.name} unavailable: circuit open after {self._failures} consecutive failures "
            f"(last: {self.last_error}); next attempt in {retry_in_s:.1f}s",
            retry_in_s,
        )

    def _set(self, state: State) -> None:
        self.state = state
        STATE.labels(self.name).set(state.value)
