"""Factories of DriftReport records shaped as the Avro schema decodes them (timestamps in int milliseconds)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

HOUR_MS = 3_600_000
START_MS = 1_796_000_000_000  # 2026-11-30 00:53:20 UTC


def feature(name: str, *, drifted: bool = False, kind: str = "numeric", shift: float = 0.0) -> dict[str, Any]:
    """One FeatureDrift record: ten decile bins, the current shares moved by `shift` towards the top bin."""
    ref = [0.1] * 10
    cur = [max(0.0, 0.1 - shift / 9)] * 9 + [0.1 + shift]
    edges = [float(e) for e in range(1, 10)] if kind != "categorical" else [0.0, 1.0]
    if kind == "categorical":
        ref, cur = [0.7, 0.3], [0.7 - shift, 0.3 + shift]
    return {
        "name": name,
        "kind": kind,
        "test": "chi2" if kind == "categorical" else "ks",
        "statistic": 0.02 + shift,
        "p_value": 1e-9 if drifted else 0.4,
        "p_corrected": 1e-8 if drifted else 0.8,
        "effect": "jensen_shannon" if kind == "categorical" else "psi",
        "effect_size": 0.3 if drifted else 0.01,
        "ks_statistic": 0.02 + shift,
        "ks_pvalue": 1e-9 if drifted else 0.4,
        "psi": 0.3 if drifted else 0.01,
        "jensen_shannon": 0.05,
        "wasserstein": 0.1,
        "bin_edges": edges,
        "reference_shares": ref,
        "current_shares": cur,
        "drifted": drifted,
        "categories": [],
    }


def report(
    index: int = 0,
    *,
    features: Sequence[dict[str, Any]] | None = None,
    status: str | None = None,
    performance: dict[str, Any] | None = None,
    model_name: str = "fraud",
    model_version: str = "7",
) -> dict[str, Any]:
    """The DriftReport of hourly window `index` of one model version."""
    metrics = list(features if features is not None else [feature("amount"), feature("hour_of_day")])
    metrics.append(feature("score", kind="score"))
    drifted = [m["name"] for m in sorted(metrics, key=lambda m: -m["effect_size"]) if m["drifted"]]
    start = START_MS + index * HOUR_MS
    return {
        "report_id": f"r-{index}",
        "subject": "predictions",
        "feature_set_version": "card-1a2b",
        "model_version": model_version,
        "model_name": model_name,
        "window_start": start,
        "window_end": start + HOUR_MS,
        "reference_size": 10_000,
        "window_size": 50 if status == "insufficient_data" else 5_000,
        "metrics": metrics,
        "drifted": bool(drifted),
        "created_at": start + HOUR_MS + 60_000,
        "status": status or ("drift" if drifted else "ok"),
        "correction": "benjamini-hochberg",
        "alpha": 0.05,
        "drifted_features": drifted,
        "late_predictions": 3,
        "log_complete": True,
        "performance": performance,
    }


def performance(pr_auc: float | None, estimated_precision: float = 0.7) -> dict[str, Any]:
    return {
        "labelled": 0 if pr_auc is None else 4_000,
        "positives": 0 if pr_auc is None else 40,
        "pr_auc": pr_auc,
        "roc_auc": None if pr_auc is None else 0.95,
        "precision": None if pr_auc is None else 0.72,
        "recall": None if pr_auc is None else 0.61,
        "estimated_precision": estimated_precision,
        "estimated_recall": 0.6,
        "reference_pr_auc": 0.88,
        "band_low": 0.82,
        "band_high": 0.94,
        "degraded": pr_auc is not None and pr_auc < 0.82,
    }


@pytest.fixture
def make_report() -> Callable[..., dict[str, Any]]:
    return report


@pytest.fixture
def make_feature() -> Callable[..., dict[str, Any]]:
    return feature


@pytest.fixture
def make_performance() -> Callable[..., dict[str, Any]]:
    return performance
