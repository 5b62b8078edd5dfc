"""Online store layout without Redis: keys, packed values, definition order, grouping, newest-per-key."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from kestrel.online_store import VectorWrite, entity_key, newest_per_key
from kestrel.online_store.layout import pack_event, pack_features, to_definition_order, unpack_event, unpack_log
from kestrel.online_store.scripts import command_groups
from kestrel.online_store.writer import logged_per_key, replicas_short

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


logged = st.builds(
    VectorWrite,
    key=st.sampled_from("ab"),
    event_time_ms=st.integers(0, 5),
    event_id=st.sampled_from(["e1", "e2"]),
    version=st.just("v1"),
    values=st.just(b""),
    event=st.sampled_from([b"", b"x", b"y"]),
    retention_ms=st.sampled_from([0, 10]),
    cap=st.sampled_from([0, 4]),
)


@given(st.lists(logged, max_size=30))
def test_logged_per_key_keeps_every_event_of_the_batch(batch):
    logged = logged_per_key(batch)
    assert set(logged) == {w.key for w in batch if w.event}
    for key, (events, retention, cap) in logged.items():
        mine = [w for w in batch if w.key == key and w.event]
        assert events == [(w.event_time_ms, w.event) for w in mine]  # superseded vectors' events too
        assert (retention, cap) == (max(w.retention_ms for w in mine), max(w.cap for w in mine))


@given(
    st.text(max_size=40),
    st.dictionaries(st.text(max_size=8), st.floats(allow_nan=False), max_size=4),
    st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=4),
    st.integers(0, 2**53),
)
def test_an_event_log_member_reads_back_as_the_event(event_id, numbers, categories, t):
    member = pack_event(event_id, numbers, categories)
    event = unpack_event(member, t)
    assert event == (
        t,
        event_id,
        tuple(numbers[k] for k in sorted(numbers)),
        tuple(categories[k] for k in sorted(categories)),
    )


def test_a_member_of_another_layout_is_refused():
    member = pack_event("e", {"amount": 1.0}, {"country": "DE"})
    with pytest.raises(ValueError):
        unpack_event(member + b"!", 0)


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
    assert (write.event, write.retention_ms, write.cap) == (b"", 0, 0)  # a record from before the event log
    record |= {"categories": {"m": "x", "c": "DE"}, "numbers": {"amount": 2.5}, "log_retention_ms": 9, "log_cap": 4}
    write = VectorWrite.from_record(record, "p")
    assert (write.retention_ms, write.cap) == (9, 4)
    assert unpack_event(write.event, 1) == (1, "e-1", (2.5,), ("DE", "x"))


@given(
    st.lists(
        st.tuples(st.text(max_size=20), st.floats(allow_nan=False), st.text(max_size=12), st.integers(0, 2**53)),
        max_size=8,
    )
)
def test_a_log_decodes_column_by_column_as_its_members_do_one_by_one(rows):
    flat = []
    for event_id, amount, country, t in rows:
        flat += [pack_event(event_id, {"amount": amount}, {"country": country, "channel": "pos"}), str(t).encode()]
    columns = unpack_log(flat)
    one_by_one = [unpack_event(flat[k], int(flat[k + 1])) for k in range(0, len(flat), 2)]
    assert columns.times == [e.event_time_ms for e in one_by_one] and columns.ids == [e.event_id for e in one_by_one]
    assert columns.numbers == ([[e.numbers[0] for e in one_by_one]] if rows else [])
    assert columns.categories == ([[e.categories[j] for e in one_by_one] for j in range(2)] if rows else [])


def test_a_log_mixing_layouts_is_refused():
    flat = [pack_event("a", {"amount": 1.0}, {}), b"1", pack_event("b", {"amount": 1.0}, {"country": "DE"}), b"2"]
    with pytest.raises(ValueError, match="layouts"):
        unpack_log(flat)


def test_a_wait_short_of_replicas_says_how_many_and_how_long() -> None:
    assert replicas_short(1, 1, 500) is None and replicas_short(2, 1, 500) is None
    assert replicas_short(0, 2, 250) == (
        "redis WAIT: 0 of 2 replicas acknowledged the batch within 250 ms; "
        "it stays uncommitted and is sent again (check the replicas: INFO replication)"
    )
