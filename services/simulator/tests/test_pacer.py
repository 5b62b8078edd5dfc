"""Unit tests of the token-bucket pacer on a fake clock."""

from __future__ import annotations

import pytest

from kestrel.simulator.pacer import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Real sleeps overshoot a little; the bucket must not lose those tokens.
        self.now += seconds + 0.0007


async def test_holds_the_target_rate_in_small_batches():
    fake = FakeTime()
    bucket = TokenBucket(5_000, clock=fake.clock, sleep=fake.sleep)
    sent = 0
    while fake.now < 10.0:
        sent += await bucket.take()
    assert bucket.batch == 50  # 10 ms worth at 5,000/s
    assert sent / fake.now == pytest.approx(5_000, rel=0.01)


async def test_batch_size_is_capped_and_limit_respected():
    fake = FakeTime()
    bucket = TokenBucket(1_000_000, max_batch=2_000, clock=fake.clock, sleep=fake.sleep)
    assert bucket.batch == 2_000
    assert await bucket.take(limit=7) == 7


async def test_unpaced_never_waits_on_the_clock():
    fake = FakeTime()
    bucket = TokenBucket(0, max_batch=1_000, clock=fake.clock, sleep=fake.sleep)
    assert [await bucket.take() for _ in range(3)] == [1_000] * 3
    assert fake.now == pytest.approx(0.0007 * 3)  # only sleep(0) yields


async def test_a_stall_does_not_earn_an_unbounded_burst():
    fake = FakeTime()
    bucket = TokenBucket(1_000, clock=fake.clock, sleep=fake.sleep)
    fake.now += 60.0  # the sink stalled for a minute
    start = fake.now
    sent = 0
    while sent < 1_000:
        sent += await bucket.take()
    assert fake.now - start >= 0.7  # caught up by at most a quarter second, not 60,000 events


def test_negative_rate_is_refused():
    with pytest.raises(ValueError):
        TokenBucket(-1)
