"""The valid record of each consumed topic (sent after the garbage), and which decodable records must be refused."""

from __future__ import annotations

import uuid
from typing import Any

from kestrel.common.validation import Limits, validate_event
from kestrel.featureset import load_feature_set

from .servers import MODEL
from .strategies import NOW_MS, valid_event

CARD = load_feature_set("card")


def valid_sentinel_event(salt: int) -> dict[str, Any]:
    return valid_event(salt) | {"event_id": f"e-fuzz-valid-{salt}", "entity_id": f"card-fuzz-{salt}"}


def valid_vector(salt: int) -> dict[str, Any]:
    return {
        "entity_id": f"card-fuzz-{salt}",
        "event_id": f"e-fuzz-valid-{salt}",
        "event_time": NOW_MS - 60_000,
        "feature_set_version": CARD.version_id,
        "features": {},
        "feature_values": [0.5] * len(CARD.names),
        "computed_at": NOW_MS - 59_000,
        "categories": {},
        "category_window_ms": 0,
        "numbers": {},
        "log_retention_ms": 0,
        "log_cap": 0,
    }


def valid_prediction(salt: int) -> dict[str, Any]:
    return {
        "prediction_id": f"p-fuzz-{uuid.uuid4().hex}",
        "event_id": f"e-fuzz-valid-{salt}",
        "entity_id": f"card-fuzz-{salt}",
        "event_time": NOW_MS - 60_000,
        "model_name": MODEL,
        "model_version": "1",
        "score": 0.25,
        "threshold": 0.5,
        "decision": False,
        "feature_set_version": CARD.version_id,
        "features": {},
        "feature_values": [0.5] * len(CARD.names),
        "features_age_ms": 10,
        "degraded": False,
        "flags": [],
        "latency_us": 900,
        "source": "api",
        "predicted_at": NOW_MS - 59_000,
    }


def valid_label(salt: int) -> dict[str, Any]:
    return {
        "event_id": f"e-fuzz-valid-{salt}",
        "entity_id": f"card-fuzz-{salt}",
        "label": 1,
        "label_time": NOW_MS - 1000,
        "source": "fuzz",
    }


def valid_report(salt: int) -> dict[str, Any]:
    metric = {"ks_statistic": 0.1, "ks_pvalue": 0.5, "psi": 0.01}
    return {
        "report_id": f"r-fuzz-{salt}-{uuid.uuid4().hex}",
        "subject": "predictions",
        "feature_set_version": CARD.version_id,
        "model_version": "1",
        "model_name": MODEL,
        "window_start": NOW_MS - 3_600_000,
        "window_end": NOW_MS,
        "reference_size": 1000,
        "window_size": 1000,
        "metrics": [dict(metric, name=name, drifted=False) for name in CARD.names[:3]],
        "drifted": False,
        "created_at": NOW_MS,
        "status": "ok",
        "drifted_features": [],
    }


def valid_alert(salt: int) -> dict[str, Any]:
    return {
        "alert_id": f"a-fuzz-{salt}-{uuid.uuid4().hex}",
        "fingerprint": f"{salt:016x}",
        "name": "FuzzCheck",
        "severity": "info",
        "status": "firing",
        "labels": {"alertname": "FuzzCheck", "model": MODEL},
        "annotations": {},
        "starts_at": NOW_MS - 60_000,
        "ends_at": None,
        "source": "fuzz",
    }


def invalid_event(record: dict[str, Any]) -> bool:
    """An event ingest would refuse: every consumer of raw events must dead-letter it, not count it."""
    return bool(validate_event(record, NOW_MS, Limits(max_future_skew_ms=300_000)))


def unwindowable(record: dict[str, Any]) -> bool:
    """A record the drift monitor cannot window: one such would close every open window, or none could date it."""
    from kestrel.drift_monitor.windows import unwindowable as why

    return why(record["event_time"], NOW_MS) is not None
