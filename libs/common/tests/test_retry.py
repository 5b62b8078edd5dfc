"""Backoff delays and the retrying block built on tenacity."""

import asyncio

import pytest

from kestrel.common.retry import Backoff, retrying


def test_backoff_doubles_from_initial_to_the_cap_and_resets():
    b = Backoff(0.1, 1.0)
    assert [round(b.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    b.reset()
    assert b.next() == pytest.approx(0.1)


async def test_retrying_stops_after_attempts_and_reraises_the_last_error():
    calls = 0
    with pytest.raises(ConnectionError, match="3"):
        async for attempt in retrying(0.001, 0.002, attempts=3):
            with attempt:
                calls += 1
                raise ConnectionError(str(calls))
    assert calls == 3


async def test_retrying_raises_at_once_what_it_should_not_retry():
    calls = 0
    with pytest.raises(ValueError):
        async for attempt in retrying(0.001, 0.002, attempts=5, when=lambda exc: isinstance(exc, ConnectionError)):
            with attempt:
                calls += 1
                raise ValueError("bad input")
    assert calls == 1


async def test_retrying_returns_the_first_success():
    results = []
    async for attempt in retrying(0.001, 0.002):
        with attempt:
            if len(results) < 2:
                results.append("fail")
                raise ConnectionError
            results.append("ok")
    assert results == ["fail", "fail", "ok"]


async def test_setting_until_ends_the_wait_and_the_retries():
    until = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, until.set)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ConnectionError):
        async for attempt in retrying(30, 60, until=until):
            with attempt:
                raise ConnectionError
    assert asyncio.get_running_loop().time() - started < 5


async def test_only_the_failures_counts_accepts_use_up_attempts():
    errors = [TimeoutError()] * 5 + [ValueError("1"), TimeoutError(), ValueError("2"), ValueError("3")]
    calls = 0
    with pytest.raises(ValueError, match="2"):
        async for attempt in retrying(0.001, 0.002, attempts=2, counts=lambda exc: isinstance(exc, ValueError)):
            with attempt:
                calls += 1
                raise errors[calls - 1]
    assert calls == 8
