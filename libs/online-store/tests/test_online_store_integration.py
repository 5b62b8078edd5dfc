"""Online store against a real Redis: newest event time wins, TTL, reads in definition order, script reloads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from kestrel.common.errors import UnavailableError
from kestrel.devstack.ports import free_port
from kestrel.online_store import OnlineStore, OnlineStoreWriter, VectorWrite, redis_client

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Layout:
    """A small feature set with the FeatureSet interface; its definition order is not alphabetical."""

    version_id: str = "t.v1"
    names: list[str] = field(default_factory=lambda: ["zeta", "alpha", "mid"])
    defaults: list[float] = field(default_factory=lambda: [-1.0, -2.0, -3.0])


def vec(
    entity: str, t: int, event_id: str = "e", scale: float = 1.0, version: str = "t.v1", prefix: str = "p"
) -> VectorWrite:
    features = {"zeta": scale * 1, "alpha": scale * 2, "mid": scale * 3}
    record = {
        "entity_id": entity,
        "event_id": event_id,
        "event_time": t,
        "feature_set_version": version,
        "features": features,
    }
    return VectorWrite.from_record(record, prefix)


async def test_an_older_vector_never_overwrites_a_newer_one(client, prefix):
    writer, store = OnlineStoreWriter(client, ttl_s=60), OnlineStore(client, Layout(), prefix=prefix)
    assert (await writer.write([vec("a", 2000, scale=2, prefix=prefix)])).written == 1
    result = await writer.write([vec("a", 1000, scale=1, prefix=prefix), vec("b", 1000, prefix=prefix)])
    assert (result.written, result.older) == (1, 1)
    got = await store.get("a")
    assert got.found and got.event_time_ms == 2000 and got.values.tolist() == [2.0, 4.0, 6.0]


@pytest.mark.parametrize("ids", [("e-1", "e-2"), ("B", "a"), ("ab", "abc"), ("z", "é"), ("e-10", "e-9")])
async def test_ties_on_event_time_go_to_the_larger_event_id_in_any_order(client, prefix, ids):
    writer, store = OnlineStoreWriter(client, ttl_s=60), OnlineStore(client, Layout(), prefix=prefix)
    low, high = sorted(ids)  # Python's order; the script must agree whatever the server's locale
    for entity, order in (("x", (low, high)), ("y", (high, low))):
        for event_id in order:  # separate calls: the comparison happens inside Redis
            await writer.write([vec(entity, 5000, event_id, scale=1 if event_id == low else 9, prefix=prefix)])
    batch = await store.get_many(["x", "y"])
    assert batch.values[:, 0].tolist() == [9.0, 9.0]
    assert batch.event_ids == [high, high] and (await store.get("x")).event_id == high


async def test_ttl_is_set_and_refreshed_on_write(client, prefix):
    writer = OnlineStoreWriter(client, ttl_s=100)
    store = OnlineStore(client, Layout(), prefix=prefix)
    await writer.write([vec("a", 1, prefix=prefix)])
    await client.pexpire(store.key("a"), 5000)
    await writer.write([vec("a", 2, prefix=prefix)])
    assert 95_000 < await client.pttl(store.key("a")) <= 100_000
    await OnlineStoreWriter(client, ttl_s=0).write([vec("b", 1, prefix=prefix)])
    assert await client.pttl(store.key("b")) == -1  # ttl 0: no expiry


async def test_get_many_answers_in_request_order_with_defaults_and_age(client, prefix):
    writer = OnlineStoreWriter(client, ttl_s=60, chunk=3)
    now = int(time.time() * 1000)
    await writer.write([vec(f"e{i}", now - 1000 * i, scale=i, prefix=prefix) for i in range(10)])
    store = OnlineStore(client, Layout(), prefix=prefix, max_age_ms=5500, chunk=4)
    ids = ["e9", "missing", "e0", "e9", *[f"e{i}" for i in range(1, 9)]]
    batch = await store.get_many(ids)
    assert batch.values.shape == (12, 3)
    assert batch.values[0].tolist() == [9.0, 18.0, 27.0] and batch.values[3].tolist() == [9.0, 18.0, 27.0]
    assert batch.values[1].tolist() == [-1.0, -2.0, -3.0] and not batch.found[1] and batch.age_ms[1] == -1
    assert batch.event_ids[1] is None and batch.event_ids[0] == "e"
    assert batch.found.sum() == 11
    assert 9000 <= batch.age_ms[0] < 12_000 and batch.stale[0] and not batch.stale[2]
    one = batch[2]
    assert one.entity_id == "e0" and one.found and one.event_time_ms == now and one.version == "t.v1"


async def test_get_of_a_missing_entity_gives_writable_defaults(client, prefix):
    got = await OnlineStore(client, Layout(), prefix=prefix).get("nobody")
    assert not got.found and got.age_ms is None and got.values.tolist() == [-1.0, -2.0, -3.0]
    got.values[0] = 0.0  # callers may fill in request-time features


async def test_an_entry_in_another_layout_is_served_as_missing_and_counted(client, prefix):
    store = OnlineStore(client, Layout(), prefix=prefix)
    await client.hset(store.key("a"), mapping={"_ts": 1, "_v": "t.v1", "x": np.zeros(5).tobytes()})
    assert not (await store.get("a")).found
    assert not (await store.get_many(["a", "b"])).found.any()
    assert store.invalid == 2


async def test_scripts_are_reloaded_after_redis_forgets_them(client, prefix):
    writer, store = OnlineStoreWriter(client, ttl_s=60), OnlineStore(client, Layout(), prefix=prefix)
    await writer.write([vec("a", 1, prefix=prefix)])
    await client.script_flush()
    assert (await writer.write([vec("a", 2, prefix=prefix), vec("b", 2, prefix=prefix)])).written == 2
    await client.script_flush()
    assert (await store.get_many(["a", "b"])).found.all()


async def test_versions_live_side_by_side(client, prefix):
    writer = OnlineStoreWriter(client, ttl_s=60)
    await writer.write([vec("a", 1, scale=1, prefix=prefix), vec("a", 1, scale=2, version="t.v2", prefix=prefix)])
    v1 = await OnlineStore(client, Layout(), prefix=prefix).get("a")
    v2 = await OnlineStore(client, Layout(version_id="t.v2"), prefix=prefix).get("a")
    assert (v1.values[0], v2.values[0]) == (1.0, 2.0)


async def test_the_card_feature_set_reads_back_in_its_own_order(client, prefix):
    features = pytest.importorskip("kestrel.featureset")
    card = features.load_feature_set("card")
    record = {
        "entity_id": "card-1",
        "event_id": "e",
        "event_time": 1,
        "feature_set_version": card.version_id,
        "features": {name: float(i) for i, name in enumerate(card.names)},
    }
    await OnlineStoreWriter(client, ttl_s=60).write([VectorWrite.from_record(record, prefix)])
    got = await OnlineStore(client, card, prefix=prefix).get("card-1")
    assert got.values.tolist() == [float(i) for i in range(len(card.names))]


async def test_a_foreign_value_under_our_key_is_replaced_not_a_stall(client, prefix):
    store = OnlineStore(client, Layout(), prefix=prefix)
    await client.set(store.key("a"), "not a hash")
    assert (await OnlineStoreWriter(client, ttl_s=60).write([vec("a", 1, prefix=prefix)])).written == 1
    assert (await store.get("a")).found


async def test_an_unreachable_redis_is_reported_as_unavailable():
    client = redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    store = OnlineStore(client, Layout())
    with pytest.raises(UnavailableError, match="online store read failed"):
        await store.get("a")
    with pytest.raises(UnavailableError, match="online store read failed"):
        await store.get_many(["a", "b"])
    with pytest.raises(UnavailableError, match="redis write failed"):
        await OnlineStoreWriter(client, ttl_s=1).write([vec("a", 1)])
    await client.aclose()
