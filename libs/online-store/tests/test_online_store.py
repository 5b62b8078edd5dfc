"""Online store layout without Redis: keys, packed values, definition order, grouping, newest-per-key."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from kestrel.online_store import VectorWrite, entity_key, newest_per_key
from kestrel.online_store.layout import pack_features, to_definition_order
from kestrel.online_store.scripts import command_groups
from kestrel.online_store.writer import seen_per_key

names_strategy = st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True), min_size=1, max_size=40, unique=True)


def test_key_makes_the_entity_the_cluster_hash_tag():
    key = entity_key("kestrel:fs", "card.v1", "card-42")
    assert key == "kestrel:fs:card.v1:{card-42}"
    assert key_slot(key.encode()) == key_slot(b"card-42")


@pytest.mark.parametrize("prefix, version", [("a{b", "v1"), ("kestrel", "v}1")])
def test_braces_outside_the_entity_are_refused(prefix, version):
    with pytest.raises(ValueError, match="braces"):
        entity_key(prefix, version, "e")


@given(names_strategy, st.data())
def test_stored_values_read_back_in_definition_order(names, data):
    values = data.draw(st.lists(st.floats(allow_nan=False), min_size=len(names), max_size=len(names)))
    stored_names, blob = pack_features(dict(zip(names, values)))
    assert stored_names == sorted(names)
    read = np.frombuffer(blob, dtype="<f8")[to_definition_order(names)]
    assert read.tolist() == values


@given(st.lists(st.text(max_size=8), max_size=300), st.integers(1, 50))
def test_standalone_groups_are_ordered_chunks(keys, chunk):
    groups = command_groups(keys, chunk, cluster=False)
    assert [i for g in groups for i in g] == list(range(len(keys)))
    assert all(0 < len(g) <= chunk for g in groups)


@given(st.lists(st.text(max_size=8), max_size=300), st.integers(1, 50))
def test_cluster_groups_hold_one_slot_each(keys, chunk):
    groups = command_groups(keys, chunk, cluster=True)
    assert sorted(i for g in groups for i in g) == list(range(len(keys)))
    assert all(len({key_slot(keys[i].encode()) for i in g}) == 1 and len(g) <= chunk for g in groups)


writes = st.builds(
    VectorWrite,
    key=st.sampled_from("abc"),
    event_time_ms=st.integers(0, 5),
    event_id=st.text(max_size=3),
    version=st.just("v1"),
    values=st.just(b""),
)


@given(st.lists(writes, max_size=40))
def test_newest_per_key_keeps_the_largest_time_then_id(batch):
    newest = {w.key: w for w in newest_per_key(batch)}
    assert set(newest) == {w.key for w in batch}
    for w in batch:
        best = newest[w.key]
        assert (best.event_time_ms, best.event_id) >= (w.event_time_ms, w.event_id)


categorised = st.builds(
    VectorWrite,
    key=st.sampled_from("ab"),
    event_time_ms=st.integers(0, 5),
    event_id=st.just("e"),
    version=st.just("v1"),
    values=st.just(b""),
    categories=st.lists(st.tuples(st.sampled_from(["m", "c"]), st.sampled_from("xyz")), max_size=2).map(tuple),
    window_ms=st.sampled_from([0, 10]),
)


@given(st.lists(categorised, max_size=30))
def test_seen_per_key_keeps_every_value_of_the_batch_at_its_newest_time(batch):
    seen = seen_per_key(batch)
    for w in batch:
        for pair in w.categories:
            assert seen[w.key][0][pair] == max(
                v.event_time_ms for v in batch if v.key == w.key and pair in v.categories
            )
    assert all(
        window == max(w.window_ms for w in batch if w.key == key and w.categories) for key, (_, window) in seen.items()
    )
    assert set(seen) == {w.key for w in batch if w.categories}


def test_from_record_keys_by_version_and_entity():
    record = {
        "entity_id": "card-1",
        "event_id": "e-1",
        "event_time": 1_700_000_000_000,
        "feature_set_version": "card.v1",
        "features": {"b": 2.0, "a": 1.0},
        "computed_at": 0,
    }
    write = VectorWrite.from_record(record, "p")
    assert write.key == "p:card.v1:{card-1}"
    assert np.frombuffer(write.values, dtype="<f8").tolist() == [1.0, 2.0]  # sorted by name
    assert (write.categories, write.window_ms) == ((), 0)  # a record from before categories
    record |= {"categories": {"m": "x", "c": "DE"}, "category_window_ms": 9}
    assert VectorWrite.from_record(record, "p").categories == (("c", "DE"), ("m", "x"))
