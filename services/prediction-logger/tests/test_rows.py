"""The pure core: records to rows, what is rejected and why, and the partition plan."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from kestrel.common.errors import SerializationError
from kestrel.prediction_logger.rows import (
    LABEL_COLUMNS,
    PREDICTION_COLUMNS,
    label_row,
    partition_plan,
    prediction_row,
    prepare,
)

T = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def prediction(**overrides: Any) -> dict[str, Any]:
    base = {
        "prediction_id": "p-1",
        "event_id": "e-1",
        "entity_id": "card-1",
        "event_time": T,
        "model_name": "fraud",
        "model_version": "3",
        "score": 0.9,
        "threshold": 0.5,
        "decision": True,
        "feature_set_version": "card.v1",
        "features": {"amount": 12.5, "missing": math.nan},
        "feature_values": [],
        "features_age_ms": 40,
        "degraded": False,
        "flags": ["stale"],
        "latency_us": 900,
        "source": "api",
        "predicted_at": T + 5,
    }
    return {**base, **overrides}


def label(**overrides: Any) -> dict[str, Any]:
    return {"event_id": "e-1", "entity_id": "card-1", "label": 1, "label_time": T, "source": "chargeback", **overrides}


def test_a_prediction_becomes_a_row_in_column_order() -> None:
    row = dict(zip(PREDICTION_COLUMNS, prediction_row(prediction())))
    assert row["event_time"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert row["predicted_at"] == datetime(2026, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)
    assert json.loads(row["features"]) == {"amount": 12.5, "missing": None}  # NaN: the model saw it missing
    assert row["feature_values"] is None  # written before packing: the map is all there is
    assert row["flags"] == ["stale"] and row["prediction_id"] == "p-1"


def test_packed_feature_values_go_to_their_array_column_without_the_map() -> None:
    row = dict(zip(PREDICTION_COLUMNS, prediction_row(prediction(features={}, feature_values=[12.5, math.nan]))))
    assert row["features"] is None
    assert row["feature_values"][0] == 12.5 and math.isnan(row["feature_values"][1])


def test_a_label_becomes_a_row_in_column_order() -> None:
    row = dict(zip(LABEL_COLUMNS, label_row(label())))
    assert row == {
        "event_id": "e-1",
        "entity_id": "card-1",
        "label": 1,
        "label_time": datetime(2026, 1, 1, tzinfo=UTC),
        "source": "chargeback",
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (prediction(prediction_id=""), "prediction_id is empty"),
        (prediction(event_id="e\x00"), "NUL character in event_id"),
        (prediction(flags=["a\x00"]), "NUL character"),
        (prediction(event_time=10**16), "out of range"),
    ],
)
def test_predictions_postgres_would_refuse_are_rejected(value: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        prediction_row(value)


def test_a_label_other_than_0_or_1_is_rejected() -> None:
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        label_row(label(label=2))


def test_prepare_keeps_the_good_rows_and_rejects_the_rest_with_reasons() -> None:
    records = [SimpleNamespace(offset=i) for i in range(3)]
    decoded = [prediction(), SerializationError("not avro"), prediction(model_name="")]
    rows = prepare(records, decoded, "predictions")
    assert len(rows.predictions) == 1 and rows.labels == []
    assert [(r.record.offset, r.reason) for r in rows.rejections] == [(1, "not avro"), (2, "model_name is empty")]


def test_prepare_adds_to_the_rows_of_the_same_batch() -> None:
    rows = prepare([SimpleNamespace()], [prediction()], "predictions")
    prepare([SimpleNamespace()], [label()], "labels", rows)
    assert (len(rows.predictions), len(rows.labels)) == (1, 1)


def test_partitions_are_planned_ahead_and_expired_ones_dropped() -> None:
    existing = ["predictions_default", "predictions_20260101", "predictions_20260220", "predictions_20260302"]
    plan = partition_plan("predictions", date(2026, 3, 2), ahead=2, retention_days=30, existing=existing)
    assert plan.create == [date(2026, 3, 3), date(2026, 3, 4)]
    assert plan.drop == ["predictions_20260101"]  # 2026-02-20 ends within 30 days; the default stays


def test_partitions_of_another_table_are_left_alone() -> None:
    plan = partition_plan("labels", date(2026, 3, 2), ahead=0, retention_days=1, existing=["predictions_20200101"])
    assert plan.drop == [] and plan.create == [date(2026, 3, 2)]
