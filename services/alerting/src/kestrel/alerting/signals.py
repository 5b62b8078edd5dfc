"""Signals: one observation each, from a drift report (per model version, per feature) or from the platform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Signal = Mapping[str, Any]
"""{"source": "drift"|"platform", "scope": "model"|"feature"|"platform", "labels": {...}, "values": {...},
"at_ms": int} plus "report_id" and "report_url" for drift."""


def drift_signals(report: Mapping[str, Any], report_url: str = "") -> list[Signal]:
    """One model-scope signal for the report, then one feature-scope signal per tested feature (drifted or not,
    so a feature that stops drifting is seen to stop). report_url: a template with {report_id}."""
    labels = _report_labels(report)
    values = _model_values(report)
    base = {
        "source": "drift",
        "at_ms": int(report.get("created_at") or report.get("window_end") or 0),
        "report_id": report.get("report_id", ""),
        "report_url": report_url.format(report_id=report.get("report_id", "")) if report_url else "",
    }
    signals: list[Signal] = [{**base, "scope": "model", "labels": labels, "values": values}]
    for metric in _features(report):
        feature_values = {**values, **_feature_values(metric)}
        feature_labels = {**labels, "feature": str(metric["name"])}
        signals.append({**base, "scope": "feature", "labels": feature_labels, "values": feature_values})
    return signals


def platform_signal(field: str, labels: Mapping[str, str], value: float, at_ms: int) -> Signal:
    """A platform observation, e.g. platform_signal("consumer_lag", {"group": "kestrel-features"}, 1200, now)."""
    return {"source": "platform", "scope": "platform", "labels": dict(labels), "values": {field: value}, "at_ms": at_ms}


def _report_labels(report: Mapping[str, Any]) -> dict[str, str]:
    labels = {
        "subject": str(report.get("subject") or ""),
        "feature_set_version": str(report.get("feature_set_version") or ""),
    }
    if report.get("model_name"):
        labels["model"] = str(report["model_name"])
    if report.get("model_version"):
        labels["model_version"] = str(report["model_version"])
    return {k: v for k, v in labels.items() if v}


def _features(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in report.get("metrics") or () if not _is_score(m)]


def _is_score(metric: Mapping[str, Any]) -> bool:
    return metric.get("kind") == "score" or metric.get("name") == "score"


def _model_values(report: Mapping[str, Any]) -> dict[str, Any]:
    features = _features(report)
    drifted = sum(1 for m in features if m.get("drifted"))
    values: dict[str, Any] = {
        "status": report.get("status", "ok"),
        "drifted": bool(report.get("drifted")),
        "drifted_features": drifted,
        "drift_share": drifted / len(features) if features else 0.0,
        "window_size": report.get("window_size"),
        "late_predictions": report.get("late_predictions", 0),
    }
    score = next((m for m in report.get("metrics") or () if _is_score(m)), None)
    if score is not None:
        values |= {"score_drifted": bool(score.get("drifted")), "score_psi": score.get("psi")}
    return values | _performance_values(report.get("performance"))


def _performance_values(perf: Mapping[str, Any] | None) -> dict[str, Any]:
    if not perf:
        return {}
    values = {
        "performance_degraded": bool(perf.get("degraded")),
        "performance_basis": perf.get("basis", "none"),
        "labelled": perf.get("labelled"),
        "pr_auc": perf.get("pr_auc"),
        "reference_pr_auc": perf.get("reference_pr_auc"),
        "band_low": perf.get("band_low"),
        "estimated_precision": perf.get("estimated_precision"),
        "precision_band_low": perf.get("precision_band_low"),
    }
    values["pr_auc_below_band"] = _below(values["pr_auc"], values["band_low"])
    values["estimated_precision_below_band"] = _below(values["estimated_precision"], values["precision_band_low"])
    return {k: v for k, v in values.items() if v is not None}


def _below(value: float | None, low: float | None) -> bool | None:
    return None if value is None or low is None else value < low


def _feature_values(metric: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "feature_drifted": bool(metric.get("drifted")),
        "feature_psi": metric.get("psi"),
        "feature_statistic": metric.get("statistic", metric.get("ks_statistic")),
        "feature_p_corrected": metric.get("p_corrected"),
        "feature_effect_size": metric.get("effect_size"),
    }
