"""The DriftReport record (schemas/drift_report.avsc) of one closed window: plain values, no I/O."""

from __future__ import annotations

import uuid
from typing import Any

from kestrel.drift_monitor.assess import Assessment
from kestrel.drift_monitor.verdict import WindowVerdict
from kestrel.drift_monitor.windows import Close

SUBJECT = "predictions"
"""What a window report tests (the schema's subject, and the topic key): a model version's predictions."""
EVENTS = "events"
"""The other subject: the raw event columns of a window of event time, against a model version's training events."""
EVENT_SCHEMA = "kestrel.v1.Event"
"""An events report's feature_set_version: what the tested columns are (event.avsc), no feature set."""

_NAMESPACE = uuid.UUID("5d6c1f7e-3b0a-4c55-9a4e-6f2b8d0c1a77")


def report_id(model_name: str, model_version: str, window_start_ms: int) -> str:
    """Deterministic, so a window closed again after a crash overwrites its report instead of adding one."""
    return str(uuid.uuid5(_NAMESPACE, f"{model_name}\x1f{model_version}\x1f{window_start_ms}"))


def event_report_id(model_name: str, window_start_ms: int) -> str:
    """One events report per window: a close repeated after a crash (even against a newer version) replaces it."""
    return str(uuid.uuid5(_NAMESPACE, f"{EVENTS}\x1f{model_name}\x1f{window_start_ms}"))


def drift_report(
    close: Close,
    assessment: Assessment | None,
    feature_set_version: str,
    created_at_ms: int,
    log_complete: bool,
) -> dict[str, Any]:
    """The report; the score's result is the last entry of `metrics`, and counts as drift like a feature. Without
    an assessment (the version's reference could not be read) the window is reported as insufficient data."""
    if assessment is None:
        return _unassessed(close, feature_set_version, created_at_ms, log_complete)
    verdict, score = assessment.verdict, assessment.score
    drifted_features = [*verdict.drifted_features, *(["score"] if score.drifted else [])]
    status = verdict.status if verdict.status == "insufficient_data" else ("drift" if drifted_features else "ok")
    return {
        "report_id": report_id(close.model_name, close.model_version, close.start),
        "subject": SUBJECT,
        "feature_set_version": feature_set_version,
        "model_name": close.model_name,
        "model_version": close.model_version,
        "window_start": close.start,
        "window_end": close.end,
        "reference_size": verdict.reference_size,
        "window_size": verdict.current_size,
        "metrics": [f.to_record() for f in (*verdict.features, score)],
        "drifted": status == "drift",
        "created_at": created_at_ms,
        "status": status,
        "correction": verdict.correction,
        "alpha": verdict.alpha,
        "drifted_features": drifted_features,
        "late_predictions": close.late,
        "log_complete": log_complete,
        "performance": assessment.performance,
    }


def _unassessed(close: Close, feature_set_version: str, created_at_ms: int, log_complete: bool) -> dict[str, Any]:
    return {
        "report_id": report_id(close.model_name, close.model_version, close.start),
        "subject": SUBJECT,
        "feature_set_version": feature_set_version,
        "model_name": close.model_name,
        "model_version": close.model_version,
        "window_start": close.start,
        "window_end": close.end,
        "reference_size": 0,
        "window_size": close.count,
        "metrics": [],
        "drifted": False,
        "created_at": created_at_ms,
        "status": "insufficient_data",
        "drifted_features": [],
        "late_predictions": close.late,
        "log_complete": log_complete,
        "performance": None,
    }


def events_report(
    close: Close, verdict: WindowVerdict | None, model_name: str, model_version: str, created_at_ms: int
) -> dict[str, Any]:
    """The events subject's report of one window; without a verdict (no model version has an events reference) it
    is insufficient data with no metrics. No score, no performance: those are the predictions subject's."""
    status = verdict.status if verdict else "insufficient_data"
    return {
        "report_id": event_report_id(model_name, close.start),
        "subject": EVENTS,
        "feature_set_version": EVENT_SCHEMA,
        "model_name": model_name,
        "model_version": model_version or None,
        "window_start": close.start,
        "window_end": close.end,
        "reference_size": verdict.reference_size if verdict else 0,
        "window_size": verdict.current_size if verdict else close.count,
        "metrics": [f.to_record() for f in verdict.features] if verdict else [],
        "drifted": status == "drift",
        "created_at": created_at_ms,
        "status": status,
        "correction": verdict.correction if verdict else "benjamini-hochberg",
        "alpha": verdict.alpha if verdict else 0.05,
        "drifted_features": list(verdict.drifted_features) if verdict else [],
        "late_predictions": close.late,
        "log_complete": True,
        "performance": None,
    }
