"""Exponential backoff from tenacity: one policy for every retry loop in Kestrel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    stop_when_event_set,
    wait_exponential,
)
from tenacity.stop import stop_base


def backoff(initial_s: float, max_s: float) -> wait_exponential:
    """Waits of initial_s, doubled after each failure, never more than max_s."""
    return wait_exponential(multiplier=initial_s, min=initial_s, max=max_s)


class Backoff:
    """The delays of a loop that keeps going until it succeeds: `next()` after a failure, `reset()` after a success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._wait = backoff(initial_s, max_s)
        self._state = RetryCallState(AsyncRetrying(), None, (), {})
        self._state.attempt_number = 0

    def next(self) -> float:
        self._state.attempt_number += 1
        return self._wait(self._state)

    def reset(self) -> None:
        self._state.attempt_number = 0


def retrying(
    initial_s: float,
    max_s: float,
    *,
    attempts: int | None = None,
    when: Callable[[BaseException], bool] = lambda exc: True,
    counts: Callable[[BaseException], bool] | None = None,
    until: asyncio.Event | None = None,
    **options: Any,
) -> AsyncRetrying:
    """`async for attempt in retrying(...): with attempt: ...` retries the block with backoff.

    At most `attempts` tries (None: no limit), only for errors `when` accepts; with `counts`, only the failures
    it accepts use up attempts (the others are retried without limit). Once `until` is set, a wait in progress
    ends early and the next failure is not retried. The last error is re-raised, not wrapped.
    """
    stop: stop_base = stop_never
    if attempts:
        stop = stop_after_attempt(attempts) if counts is None else _after_failures(attempts, counts)
    if until is not None:
        stop = stop | stop_when_event_set(until)  # type: ignore[arg-type]  # only is_set() is called
    return AsyncRetrying(
        wait=backoff(initial_s, max_s),
        stop=stop,
        retry=retry_if_exception(when),
        sleep=_sleep_until(until),
        reraise=True,
        **options,
    )


class _after_failures(stop_base):
    """Stops once `limit` failures that `counts` accepts were seen."""

    def __init__(self, limit: int, counts: Callable[[BaseException], bool]) -> None:
        self._limit, self._counts, self._seen = limit, counts, 0

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if error is not None and self._counts(error):
            self._seen += 1
        return self._seen >= self._limit


def _sleep_until(event: asyncio.Event | None) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        if event is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    return sleep
