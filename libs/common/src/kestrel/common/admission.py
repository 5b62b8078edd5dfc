"""Load shedding at the door: a bound on the work in flight, past which callers are told to come back later."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import Counter, Gauge

from kestrel.common.errors import OverloadedError

IN_FLIGHT = Gauge("kestrel_admission_in_flight", "Units (events, requests) admitted and not finished", ["door"])
REFUSED = Counter("kestrel_admission_refused_total", "Units refused because the door was at its limit", ["door"])


class Admission:
    """Counts the units (events, requests) in flight through one door. `admit(n)` lets n more in, or raises
    OverloadedError (RESOURCE_EXHAUSTED, with when to retry) if that would pass the limit, so a service under
    more load than it can take answers at once instead of queueing without bound. A call larger than the
    limit on its own is let in when nothing else is in flight: the limit bounds memory, it never refuses a
    call forever."""

    def __init__(self, door: str, limit: int, retry_after_ms: int) -> None:
        self.door = door
        self.limit = limit
        self.retry_after_ms = retry_after_ms
        self.in_flight = 0
        self._gauge = IN_FLIGHT.labels(door)
        self._refused = REFUSED.labels(door)

    @contextlib.contextmanager
    def admit(self, n: int = 1, *, may_refuse: bool = True) -> Iterator[None]:
        """Holds n units while the block runs. may_refuse=False counts them without refusing: for work a call
        already started (a stream's later chunks), which flow control slows down instead."""
        if may_refuse and self.in_flight and self.in_flight + n > self.limit:
            self._refused.inc(n)
            raise OverloadedError(
                f"{self.door} at capacity: {self.in_flight:,} in flight, limit {self.limit:,}, {n:,} more asked",
                retry_after_ms=self.retry_after_ms,
            )
        self.in_flight += n
        self._gauge.set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= n
            self._gauge.set(self.in_flight)
