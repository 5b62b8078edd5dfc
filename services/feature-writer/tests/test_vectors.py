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


def test_prepare_rejects_undecodable_inconsistent_and_unkeyable_records():
    sources = [SimpleNamespace(offset=i) for i in range(4)]
    decoded = [record(), SerializationError("bad magic byte 7"), record(a=1.0), record("v{1}")]
    writes, rejections = prepare(sources, decoded, VectorCheck("card.v1", ["a", "b"]), "p")
    assert [w.key for w in writes] == ["p:card.v1:{card-1}"]
    reasons = [(r.record.offset, r.reason) for r in rejections]
    assert [offset for offset, _ in reasons] == [1, 2, 3]
    assert reasons[0][1] == "bad magic byte 7"
    assert reasons[1][1].startswith("features do not match card.v1") and "braces" in reasons[2][1]
