"""The per-entity event log next to the vector against a real Redis: order-free, idempotent, pruned, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from kestrel.online_store import OnlineStore, OnlineStoreWriter, VectorWrite

pytestmark = pytest.mark.integration

HOUR, DAY = 3_600_000, 86_400_000
T0 = 1_764_000_000_000
NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Layout:
    version_id: str = "t.v1"
    names: list[str] = field(default_factory=lambda: ["n"])
    defaults: list[float] = field(default_factory=lambda: [0.0])


def vec(
    prefix: str,
    t: int,
    merchant: str,
    amount: float = 1.0,
    entity: str = "a",
    event_id: str = "",
    retention: int = DAY,
    cap: int = 4096,
) -> VectorWrite:
    record = {
        "entity_id": entity,
        "event_id": event_id or f"e-{t}-{merchant}",
        "event_time": t,
        "feature_set_version": "t.v1",
        "features": {"n": float(t)},
        "categories": {"merchant": merchant, "country": "DE"},
        "numbers": {"amount": amount},
        "log_retention_ms": retention,
        "log_cap": cap,
    }
    return VectorWrite.from_record(record, prefix)


def store(client, prefix: str) -> OnlineStore:
    return OnlineStore(client, Layout(), prefix=prefix)


async def logged(s: OnlineStore, entity: str = "a") -> list[tuple[int, str]]:
    got = await s.get(entity, with_log=True)
    assert got.log is not None
    return [(e.event_time_ms, e.event_id) for e in got.log.events]


async def test_the_read_gives_vector_and_log_in_one_call(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write(
        [vec(prefix, T0, "m1", 5.0), vec(prefix, T0 + 2 * HOUR, "m2", 7.5), vec(prefix, T0 + HOUR, "m1")]
    )
    got = await s.get("a", with_log=True)
    assert got.found and got.event_time_ms == T0 + 2 * HOUR and got.values.tolist() == [float(T0 + 2 * HOUR)]
    assert got.log is not None and got.log.complete_from == 0
    first = got.log.events[0]
    assert (first.event_time_ms, first.event_id, first.numbers, first.categories) == (
        T0,
        f"e-{T0}-m1",
        (5.0,),
        ("DE", "m1"),
    )
    assert [e.event_time_ms for e in got.log.events] == [T0, T0 + HOUR, T0 + 2 * HOUR]  # oldest first
    batch = await s.get_many(["missing", "a"], with_log=True)
    assert batch.logs is not None and batch.logs[0].events == () and batch.logs[0].complete_from == 0
    assert batch.logs[1] == got.log
    assert (await s.get_many(["a"])).logs is None  # not asked: the plain read


async def test_the_log_does_not_depend_on_order_batching_or_replays(client, prefix):
    rng = random.Random(7)
    events = [vec(prefix, T0 + rng.randrange(0, 2 * DAY), f"m{rng.randrange(12)}", rng.random()) for _ in range(80)]
    logs = []
    for entity, order, chunk in (("x", events, 80), ("y", events[::-1], 1), ("z", rng.sample(events, 80), 7)):
        writes = [VectorWrite(w.key.replace("{a}", "{" + entity + "}"), *_rest(w)) for w in order]
        writer = OnlineStoreWriter(client, ttl_s=600)
        for start in range(0, len(writes), chunk):
            await writer.write(writes[start : start + chunk])
        await writer.write(writes[:10])  # a replay changes nothing
        logs.append(await logged(store(client, prefix), entity))
    newest = max(w.event_time_ms for w in events)
    expected = sorted((w.event_time_ms, w.event_id) for w in events if w.event_time_ms > newest - DAY)
    assert logs[0] == logs[1] == logs[2] == expected  # what is inside the final retention, whatever the order


def _rest(w: VectorWrite) -> tuple:
    return (w.event_time_ms, w.event_id, w.version, w.values, w.event, w.retention_ms, w.cap)


async def test_an_older_event_joins_the_log_but_not_the_vector(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write([vec(prefix, T0 + HOUR, "m1")])
    result = await writer.write([vec(prefix, T0, "m1"), vec(prefix, T0 + 10, "m2")])  # late: vectors kept out
    assert result.older == 1
    assert await logged(s) == [(T0, f"e-{T0}-m1"), (T0 + 10, f"e-{T0 + 10}-m2"), (T0 + HOUR, f"e-{T0 + HOUR}-m1")]
    assert (await s.get("a")).event_time_ms == T0 + HOUR


async def test_events_are_pruned_as_the_retention_expires(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write([vec(prefix, T0, "old"), vec(prefix, T0 + HOUR, "mid")])
    await writer.write([vec(prefix, T0 + DAY, "new")])  # "old" is at exactly newest - retention: out
    assert [t for t, _ in await logged(s)] == [T0 + HOUR, T0 + DAY]
    await writer.write([vec(prefix, T0 - 5, "ancient")])  # behind the retention: never stored
    assert [t for t, _ in await logged(s)] == [T0 + HOUR, T0 + DAY]


async def test_past_the_cap_the_oldest_events_go(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write([vec(prefix, T0 + i * 1000, f"m{i}", cap=3) for i in range(5)])
    assert [t for t, _ in await logged(s)] == [T0 + 2000, T0 + 3000, T0 + 4000]


async def test_the_log_expires_with_the_vector(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=100), store(client, prefix)
    await writer.write([vec(prefix, T0, "m1")])
    assert 95_000 < await client.pttl(f"{s.key('a')}:ev") <= 100_000
    await OnlineStoreWriter(client, ttl_s=0).write([vec(prefix, T0, "m1", entity="b")])
    assert await client.pttl(f"{s.key('b')}:ev") == -1


async def test_a_card_with_thousands_of_events_in_a_day_stays_within_the_cap(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    for start in range(0, 5000, 500):
        await writer.write([vec(prefix, T0 + i * 1000, f"m{i}") for i in range(start, start + 500)])
    key = f"{s.key('a')}:ev"
    assert await client.zcard(key) == 4096
    usage = await client.memory_usage(key)
    assert usage < 4096 * 160, usage  # about 140 bytes an event whose member is 44 bytes
    assert (await logged(s))[0][0] == T0 + (5000 - 4096) * 1000  # the oldest went


async def test_a_log_started_on_an_existing_card_says_from_when_it_is_complete(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    old = VectorWrite(s.key("a"), T0, "e-0", "t.v1", vec(prefix, T0, "m0").values)  # a writer before the log
    await writer.write([old])
    await writer.write([vec(prefix, T0 + HOUR, "m1")])
    got = await s.get("a", with_log=True)
    assert got.log is not None and got.log.complete_from == T0  # events up to T0 are missing
    assert got.log.complete_after(T0) and not got.log.complete_after(T0 - 1)
    await writer.write([vec(prefix, T0, "m1", entity="b")])
    assert (await s.get("b", with_log=True)).log.complete_from == 0  # a new card: complete
    await writer.write([VectorWrite(s.key("a"), T0 + 2 * HOUR, "e-2", "t.v1", old.values)])  # without its event
    assert (await s.get("a", with_log=True)).log.complete_from == NEVER


async def test_an_unreadable_log_is_not_trusted(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write([vec(prefix, T0, "m1")])
    await client.zadd(f"{s.key('a')}:ev", {b"not an event": T0 + 1})
    got = await s.get("a", with_log=True)
    assert got.found and got.log is not None and got.log.complete_from == NEVER and s.bad_logs == 1
