"""Old predictions and feature vectors (features by name) and new ones (packed feature_values) give the same
feature values."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import pytest

from kestrel.common.avro import AvroSerde, load_schema, plain_schema
from kestrel.common.registry import FileSchemaRegistry
from kestrel.featureset import load_feature_set
from kestrel.featureset.records import record_features
from kestrel.featureset.wire import PredictionEncoder, VectorEncoder

ROOT = Path(__file__).resolve().parents[2]
CARD = load_feature_set()
VALUES = [float(i) / 4 for i in range(len(CARD.names))]
RECORD: dict[str, Any] = {
    "prediction_id": "p-1",
    "event_id": "e-1",
    "entity_id": "card-1",
    "event_time": 1_700_000_000_000,
    "model_name": "fraud",
    "model_version": "3",
    "score": 0.25,
    "threshold": 0.5,
    "decision": False,
    "feature_set_version": CARD.version_id,
    "features_age_ms": 40,
    "degraded": False,
    "flags": [],
    "latency_us": 900,
    "source": "stream",
    "predicted_at": 1_700_000_000_100,
}


def _schemas_before_packing(name: str = "prediction") -> list[Any]:
    """Every committed schema `name` without feature_values: writers of the features map only."""
    if shutil.which("git") is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="git unavailable"))]
    path = f"schemas/{name}.avsc"
    log = subprocess.run(["git", "log", "--format=%H", "--", path], cwd=ROOT, capture_output=True, text=True)
    texts = [
        subprocess.run(["git", "show", f"{c}:{path}"], cwd=ROOT, capture_output=True, text=True)
        for c in log.stdout.split()
    ]
    old = [json.loads(t.stdout) for t in texts if t.returncode == 0 and "feature_values" not in t.stdout]
    return old or [pytest.param(None, marks=pytest.mark.skip(reason="no committed schema before packing"))]


@pytest.mark.parametrize("old_schema", _schemas_before_packing())
def test_an_old_record_and_a_new_record_give_the_same_features(old_schema: Any) -> None:
    current = load_schema("prediction")
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, plain_schema(old_schema), {**RECORD, "features": dict(zip(CARD.names, VALUES))})
    buf.seek(0)
    old = fastavro.schemaless_reader(buf, plain_schema(old_schema), plain_schema(current))

    serde = AvroSerde(FileSchemaRegistry(), "t-predictions", current)
    new = serde.deserialize(PredictionEncoder(serde, CARD.names).encode(**RECORD, features=VALUES))

    assert old["feature_values"] == [] and new["features"] == {}
    assert record_features(old, CARD) == record_features(new, CARD) == VALUES


VECTOR: dict[str, Any] = {
    "entity_id": "card-1",
    "event_id": "e-1",
    "event_time": 1_700_000_000_000,
    "feature_set_version": CARD.version_id,
    "computed_at": 1_700_000_000_100,
}


@pytest.mark.parametrize("old_schema", _schemas_before_packing("feature_vector"))
def test_an_old_vector_and_a_new_vector_give_the_same_features(old_schema: Any) -> None:
    """A vector of every schema before packing decodes with the current one (the generic serde) to the values
    the packed vector of the features service's encoder carries."""
    current = load_schema("feature_vector")
    old_record = {**VECTOR, "features": dict(zip(CARD.names, VALUES))}
    old_fields = {f["name"] for f in old_schema["fields"]}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, plain_schema(old_schema), {k: v for k, v in old_record.items() if k in old_fields})
    buf.seek(0)
    old = fastavro.schemaless_reader(buf, plain_schema(old_schema), plain_schema(current))

    serde = AvroSerde(FileSchemaRegistry(), "t-features", current)
    encoder = VectorEncoder.for_feature_set(serde, CARD)
    new = serde.deserialize(encoder.encode("card-1", "e-1", VECTOR["event_time"], VALUES, VECTOR["computed_at"]))

    assert old["feature_values"] == [] and new["features"] == {}
    assert record_features(old, CARD) == record_features(new, CARD) == VALUES


def test_features_of_another_version_or_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="not card"):
        record_features({**RECORD, "feature_set_version": "card.v0", "feature_values": VALUES}, CARD)
    with pytest.raises(ValueError, match="feature values"):
        record_features({**RECORD, "feature_values": VALUES[:-1]}, CARD)
    with pytest.raises(ValueError, match="missing"):
        record_features({**RECORD, "features": {"amount": 1.0}, "feature_values": []}, CARD)
