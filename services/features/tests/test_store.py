"""The state store: lazy decoding after a restore, change tracking, eviction of idle entities."""

from __future__ import annotations

from kestrel.features.store import StateStore
from kestrel.featureset import load_feature_set
from kestrel.featureset.codec import pack_state
from kestrel.featureset.state import FeatureComputer

from .conftest import T0, event


def test_restored_bytes_decode_on_first_use_and_changes_are_tracked() -> None:
    computer = FeatureComputer(load_feature_set())
    state = computer.new_state()
    computer.update(state, event(0, T0))
    store = StateStore(computer)
    store.load(3, {"card-1": pack_state(state), "card-2": pack_state(state)})
    assert store.take_changes() == []
    assert store.state(3, "card-1").times == [T0]
    assert [(p, k) for p, k, _ in store.take_changes()] == [(3, b"card-1")]
    assert store.take_changes() == [] and len(store) == 2 and store.partitions == {3}


def test_idle_entities_are_evicted_against_partition_time() -> None:
    computer = FeatureComputer(load_feature_set())
    store, strict = StateStore(computer, evict_after_ms=10_000), StateStore(computer, evict_after_ms=9_999)
    for s in (store, strict):
        s.load(0, {})
        for entity, t in (("old", T0), ("new", T0 + 10_000)):
            computer.update(s.state(0, entity), event(0, t, entity=entity))
            s.saw(0, t)
    assert store.evict(now_ms=T0 + 10_000) == []
    assert strict.evict(now_ms=T0 + 10_000) == [(0, b"old", None)]
    assert [k for _, k, _ in strict.take_changes()] == [b"new"]
    strict.drop([0])
    assert len(strict) == 0 and strict.partitions == set()
