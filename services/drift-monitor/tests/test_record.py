"""The DriftReport of a closed window: deterministic id, and valid against schemas/drift_report.avsc."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import numpy as np

from kestrel.drift_monitor.assess import DriftPolicy, Window, aligned, assess, reference
from kestrel.drift_monitor.progress import behind
from kestrel.drift_monitor.record import drift_report, report_id
from kestrel.drift_monitor.reports_db import upsert_args
from kestrel.drift_monitor.windows import Close
from kestrel.model.reference import compute_reference

SCHEMA = fastavro.parse_schema(json.loads((Path(__file__).parents[3] / "schemas" / "drift_report.avsc").read_text()))
CLOSE = Close("fraud", "3", 3_600_000, 7_200_000, 500, 4, {0: 10}, 7_300_000)


def model_reference(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    X = rng.normal(size=(2000, 3))
    stats = compute_reference(X, rng.uniform(size=2000), ("a", "b", "c"))
    return reference(stats, ("numeric",) * 3, "t.v1")


def test_report_ids_are_deterministic_per_model_version_and_window() -> None:
    assert report_id("fraud", "3", 0) == report_id("fraud", "3", 0)
    assert len({report_id("fraud", "3", 0), report_id("fraud", "4", 0), report_id("fraud", "3", 1)}) == 3


def test_a_drifted_window_makes_a_valid_report_naming_the_feature() -> None:
    rng = np.random.default_rng(1)
    current = rng.normal(size=(1000, 3))
    current[:, 1] += 1.0
    scores = rng.uniform(size=1000)
    labels = (rng.uniform(size=400) < scores[:400]).astype(np.int64)
    window = Window(current, scores, scores[:400], labels, 0.7)
    found = assess(model_reference(rng), window, DriftPolicy())
    report = drift_report(CLOSE, found, "t.v1", 7_400_000, log_complete=False)
    assert fastavro.validate(report, SCHEMA, strict=True)
    assert report["status"] == "drift" and report["drifted_features"] == ["b"]
    performance = report["performance"]
    assert (performance["labelled"], performance["threshold"]) == (400, 0.7) and performance["pr_auc"] is not None
    assert (report["late_predictions"], report["window_size"], report["log_complete"]) == (4, 1000, False)
    assert [m["name"] for m in report["metrics"]] == ["a", "b", "c", "score"]


def test_without_a_reference_the_window_is_reported_as_insufficient_data() -> None:
    report = drift_report(CLOSE, None, "", 7_400_000, log_complete=True)
    assert fastavro.validate(report, SCHEMA, strict=True)
    assert (report["status"], report["drifted"], report["window_size"]) == ("insufficient_data", False, 500)


def test_the_database_row_carries_the_whole_report() -> None:
    report = drift_report(CLOSE, None, "", 7_400_000, log_complete=True)
    row = upsert_args(report)
    assert row[0] == report["report_id"] and json.loads(row[4]) == report
    assert row[7].timestamp() == 3600 and row[8].timestamp() == 7200


def test_rows_are_aligned_to_the_reference_order_with_missing_as_nan() -> None:
    out = aligned(["b", "a"], [[1.0, None], [3.0, 4.0]], ["a", "b", "c"])
    assert np.array_equal(out, [[np.nan, 1.0, np.nan], [4.0, 3.0, np.nan]], equal_nan=True)


def test_the_logger_is_behind_where_its_commits_are_short_of_the_close() -> None:
    assert behind({0: 10, 1: 3}, {0: 10, 1: 5, 2: 1}) == {1: 2, 2: 1}
    assert behind({0: 11}, {0: 10}) == {}
