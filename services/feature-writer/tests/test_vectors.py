"""Decoded vectors to writes: definition checks and dead-letter reasons, without I/O."""

from __future__ import annotations

from types import SimpleNamespace

from kestrel.common.errors import SerializationError
from kestrel.feature_writer.vectors import prepare
from kestrel.featureset.check import VectorCheck


def record(version: str = "card.v1", **features: float) -> dict:
    return {
        "entity_id": "card-1",
        "event_id": "e-1",
        "event_time": 5,
        "feature_set_version": version,
        "features": features or {"a": 1.0, "b": 2.0},
        "computed_at": 6,
    }


def test_the_known_version_must_carry_exactly_its_features():
    check = VectorCheck("card.v1", ["a", "b"])
    assert check.problem(record()) is None
    assert check.problem(record(a=1.0, c=2.0)) == ("features do not match card.v1: missing ['b'], unexpected ['c']")


def test_other_versions_and_no_definitions_pass():
    assert VectorCheck("card.v1", ["a", "b"]).problem(record("card.v2", z=1.0)) is None
    assert VectorCheck().problem(record(z=1.0)) is None


def packed(version: str = "card.v1", *values: float) -> dict:
    return {**record(version), "features": {}, "feature_values": list(values or (1.0, 2.0))}


def test_packed_vectors_of_the_known_version_are_checked_and_stored_by_name():
    check = VectorCheck("card.v1", ["b", "a"])
    assert check.problem(packed()) is None and check.by_name(packed()) == {"b": 1.0, "a": 2.0}
    assert check.problem(packed("card.v1", 1.0)) == "1 feature values, card.v1 has 2"
    (write,), _ = prepare([SimpleNamespace(offset=0)], [packed()], check, "p")
    (by_name,), _ = prepare([SimpleNamespace(offset=0)], [record(b=1.0, a=2.0)], check, "p")
    assert write == by_name


def test_packed_vectors_of_another_version_are_refused_their_names_being_unknown():
    assert "knows the feature names of card.v1 only" in VectorCheck("card.v1", ["a", "b"]).problem(packed("card.v2"))
    assert VectorCheck().problem(packed()) is not None


def test_prepare_rejects_undecodable_inconsistent_and_unkeyable_records():
    sources = [SimpleNamespace(offset=i) for i in range(4)]
    decoded = [record(), SerializationError("bad magic byte 7"), record(a=1.0), record("v{1}")]
    writes, rejections = prepare(sources, decoded, VectorCheck("card.v1", ["a", "b"]), "p")
    assert [w.key for w in writes] == ["p:card.v1:{card-1}"]
    reasons = [(r.record.offset, r.reason) for r in rejections]
    assert [offset for offset, _ in reasons] == [1, 2, 3]
    assert reasons[0][1] == "bad magic byte 7"
    assert reasons[1][1].startswith("features do not match card.v1") and "braces" in reasons[2][1]
