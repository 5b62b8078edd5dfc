"""Token-bucket pacing: how many events to send now to hold a target rate, in small batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """Tokens accrue at `rate` per second up to a quarter second's worth; each event costs one.

    Sending whole batches keeps per-event overhead small, while the 10 ms slice keeps the stream
    smooth: at 5,000 events/s that is 50 events every 10 ms, not 5,000 once a second.
    """

    def __init__(
        self,
        rate: float,
        *,
        max_batch: int = 2000,
        slice_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0 (0 means as fast as possible)")
        self.rate = rate
        self.batch = max_batch if rate == 0 else max(1, min(max_batch, int(rate * slice_s)))
        """Events per send: a slice's worth at the target rate."""
        self._clock, self._sleep = clock, sleep
        self._capacity = max(2.0 * self.batch, rate * 0.25)
        self._tokens = 0.0
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        # Headroom absorbs sleep overshoot and short stalls (GC, a slow ack), so the achieved rate
        # does not sag below the target; the cap stops a long stall from earning a huge burst.
        self._tokens = min(self._tokens + (now - self._last) * self.rate, self._capacity)
        self._last = now

    async def take(self, limit: int | None = None) -> int:
        """Wait until a batch is allowed, then return its size (never above `limit`)."""
        want = self.batch if limit is None else max(1, min(self.batch, limit))
        if self.rate == 0:
            await self._sleep(0)  # let acks and progress run between unpaced batches
            return want
        self._refill()
        while self._tokens < want:
            await self._sleep((want - self._tokens) / self.rate)
            self._refill()
        self._tokens -= want
        return want
