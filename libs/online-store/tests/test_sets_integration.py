"""Categorical sets next to the vector against a real Redis: last-seen times, order-free, pruned, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from kestrel.online_store import OnlineStore, OnlineStoreWriter, SetQuery, VectorWrite

pytestmark = pytest.mark.integration

HOUR, DAY = 3_600_000, 86_400_000
T0 = 1_764_000_000_000


@dataclass(frozen=True)
class Layout:
    version_id: str = "t.v1"
    names: list[str] = field(default_factory=lambda: ["n"])
    defaults: list[float] = field(default_factory=lambda: [0.0])


def vec(prefix: str, t: int, merchant: str, country: str = "DE", entity: str = "a", event_id: str = "") -> VectorWrite:
    record = {
        "entity_id": entity,
        "event_id": event_id or f"e-{t}-{merchant}",
        "event_time": t,
        "feature_set_version": "t.v1",
        "features": {"n": float(t)},
        "categories": {"merchant": merchant, "country": country},
        "category_window_ms": DAY,
    }
    return VectorWrite.from_record(record, prefix)


def store(client, prefix: str) -> OnlineStore:
    return OnlineStore(client, Layout(), prefix=prefix, sets={"merchant": (HOUR, DAY), "country": (DAY,)})


async def members(client, key: str, source: str) -> dict[bytes, float]:
    return dict(await client.zrange(f"{key}:s:{source}", 0, -1, withscores=True))


async def test_the_read_answers_last_seen_times_and_window_counts_in_one_call(client, prefix):
    writer = OnlineStoreWriter(client, ttl_s=600)
    await writer.write(
        [vec(prefix, T0, "m1"), vec(prefix, T0 + 2 * HOUR, "m2", "FR"), vec(prefix, T0 + 3 * HOUR, "m1")]
    )
    s = store(client, prefix)
    t = T0 + 3 * HOUR + 1000
    got = await s.get("a", SetQuery(t, ["m2", "PL"]))
    assert got.found and got.event_time_ms == T0 + 3 * HOUR and got.values.tolist() == [float(T0 + 3 * HOUR)]
    assert got.sets is not None
    assert got.sets.last_seen.tolist() == [[T0 + 2 * HOUR, -1]]  # m2 seen at +2h, PL never
    assert got.sets.counts.tolist() == [[1, 2, 2]]  # merchants in 1h: m1; in 24h: m1, m2; countries: DE, FR
    assert got.sets.dropped.tolist() == [[-1, -1]]
    batch = await s.get_many(["missing", "a"], [SetQuery(t, ["m1", "DE"]), SetQuery(t, ["m2", "PL"])])
    assert batch.sets is not None and batch.sets.counts.tolist() == [[0, 0, 0], [1, 2, 2]]
    assert batch.sets.last_seen.tolist() == [[-1, -1], [T0 + 2 * HOUR, -1]]
    assert (await s.get_many(["a"])).sets is None  # no queries: the plain read


async def test_the_final_sets_do_not_depend_on_order_batching_or_replays(client, prefix):
    rng = random.Random(7)
    events = [
        vec(prefix, T0 + rng.randrange(0, 2 * DAY), f"m{rng.randrange(12)}", f"c{rng.randrange(4)}") for _ in range(80)
    ]
    states = []
    for entity, order, chunk in (("x", events, 80), ("y", events[::-1], 1), ("z", rng.sample(events, 80), 7)):
        writes = [VectorWrite(w.key.replace("{a}", "{" + entity + "}"), *_rest(w)) for w in order]
        writer = OnlineStoreWriter(client, ttl_s=600)
        for start in range(0, len(writes), chunk):
            await writer.write(writes[start : start + chunk])
        await writer.write(writes[:10])  # a replay changes nothing
        key = store(client, prefix).key(entity)
        states.append([await members(client, key, "merchant"), await members(client, key, "country")])
    assert states[0] == states[1] == states[2]
    newest = max(w.event_time_ms for w in events)
    expected: dict[bytes, float] = {}
    for w in events:  # newest time per merchant, pruned at the newest event minus the window
        name = dict(w.categories)["merchant"].encode()
        expected[name] = max(expected.get(name, 0), w.event_time_ms)
    assert states[0][0] == {m: t for m, t in expected.items() if t > newest - DAY}


def _rest(w: VectorWrite) -> tuple:
    return (w.event_time_ms, w.event_id, w.version, w.values, w.categories, w.window_ms)


async def test_an_older_event_adds_its_value_but_never_lowers_a_last_seen_time(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write([vec(prefix, T0 + HOUR, "m1")])
    result = await writer.write([vec(prefix, T0, "m1"), vec(prefix, T0 + 10, "m2")])  # late: vectors kept out
    assert result.older == 1
    assert await members(client, s.key("a"), "merchant") == {b"m1": T0 + HOUR, b"m2": T0 + 10}
    assert (await s.get("a")).event_time_ms == T0 + HOUR


async def test_values_are_pruned_as_the_longest_window_expires(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    await writer.write([vec(prefix, T0, "old"), vec(prefix, T0 + HOUR, "mid")])
    await writer.write([vec(prefix, T0 + DAY, "new")])  # "old" is at exactly newest - window: out
    assert await members(client, s.key("a"), "merchant") == {b"mid": T0 + HOUR, b"new": T0 + DAY}
    await writer.write([vec(prefix, T0 - 5, "ancient")])  # behind the window: never stored
    assert b"ancient" not in await members(client, s.key("a"), "merchant")


async def test_past_the_cap_the_least_recently_seen_go_and_are_marked(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600, set_cap=3), store(client, prefix)
    await writer.write([vec(prefix, T0 + i * 1000, f"m{i}") for i in range(5)])
    assert await members(client, s.key("a"), "merchant") == {b"m2": T0 + 2000, b"m3": T0 + 3000, b"m4": T0 + 4000}
    got = await s.get("a", SetQuery(T0 + 5000, ["m0", "DE"]))
    assert got.sets is not None and got.sets.dropped.tolist() == [[T0 + 1000, -1]]
    assert got.sets.counts.tolist() == [[3, 3, 1]] and got.sets.last_seen.tolist() == [[-1, T0 + 4000]]


async def test_the_sets_expire_with_the_vector(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=100), store(client, prefix)
    await writer.write([vec(prefix, T0, "m1")])
    assert 95_000 < await client.pttl(f"{s.key('a')}:s:merchant") <= 100_000
    await OnlineStoreWriter(client, ttl_s=0).write([vec(prefix, T0, "m1", entity="b")])
    assert await client.pttl(f"{s.key('b')}:s:merchant") == -1


async def test_thousands_of_merchants_in_a_day_stay_within_the_cap(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600, set_cap=256), store(client, prefix)
    for start in range(0, 3000, 500):
        await writer.write([vec(prefix, T0 + i * 1000, f"m{i}") for i in range(start, start + 500)])
    key = f"{s.key('a')}:s:merchant"
    assert await client.zcard(key) == 256 and await client.memory_usage(key) < 32_000
    got = await s.get("a", SetQuery(T0 + 3000 * 1000, ["m2999", "DE"]))
    assert got.sets is not None and got.sets.dropped[0, 0] == T0 + 2743 * 1000  # the 2744 oldest went
    assert got.sets.counts[0].tolist() == [256, 256, 1] and got.sets.last_seen[0, 0] == T0 + 2999 * 1000


async def test_sets_started_on_an_existing_card_say_from_when_they_are_complete(client, prefix):
    writer, s = OnlineStoreWriter(client, ttl_s=600), store(client, prefix)
    old = VectorWrite(s.key("a"), T0, "e-0", "t.v1", vec(prefix, T0, "m0").values)  # a writer before sets
    await writer.write([old])
    await writer.write([vec(prefix, T0 + HOUR, "m1")])
    query = SetQuery(T0 + 2 * HOUR, ["m1", "DE"])
    got = await s.get("a", query)
    assert got.sets is not None and got.sets.complete_from.tolist() == [T0]  # events up to T0 are missing
    await writer.write([vec(prefix, T0, "m1", entity="b")])
    assert (await s.get("b", query)).sets.complete_from.tolist() == [0]  # a new card: complete
    await writer.write([VectorWrite(s.key("a"), T0 + 2 * HOUR, "e-2", "t.v1", old.values)])  # no categories
    assert (await s.get("a", query)).sets.complete_from.tolist() == [np.iinfo(np.int64).max]
