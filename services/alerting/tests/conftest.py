"""Builders shared by the alerting unit tests: configs from YAML text, drift reports, rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from kestrel.alerting.config import Config, parse_config

HOUR = 3_600_000

BASE = """
route:
  receiver: topic
receivers:
  - {name: topic, kind: topic}
"""


def _config_from(text: str, base: str = BASE) -> Config:
    data = (yaml.safe_load(base) or {}) | (yaml.safe_load(text) or {})
    return parse_config(data)


def _report(**overrides: Any) -> dict[str, Any]:
    """A drift report of model fraud version 7 with features amount (drifted) and hour (not), and a score."""
    metrics = [
        {"name": "amount", "kind": "numeric", "psi": 0.4, "drifted": True, "p_corrected": 0.001, "effect_size": 0.4},
        {"name": "hour", "kind": "numeric", "psi": 0.01, "drifted": False, "p_corrected": 0.6, "effect_size": 0.01},
        {"name": "score", "kind": "score", "psi": 0.3, "drifted": True},
    ]
    base = {
        "report_id": "r-1", "subject": "predictions", "feature_set_version": "v3", "model_name": "fraud",
        "model_version": "7", "window_start": 0, "window_end": HOUR, "created_at": HOUR, "window_size": 20_000,
        "status": "drift", "drifted": True, "metrics": metrics, "late_predictions": 0,
        "performance": {
            "labelled": 900, "positives": 20, "pr_auc": 0.41, "reference_pr_auc": 0.62, "band_low": 0.5,
            "estimated_precision": 0.7, "precision_band_low": 0.6, "degraded": True, "basis": "measured",
        },
    }  # fmt: skip
    return base | overrides


@pytest.fixture
def config_from() -> Callable[..., Config]:
    """config_from(yaml_text, base=BASE): a Config from the base file with yaml_text's top-level keys over it."""
    return _config_from


@pytest.fixture
def report() -> Callable[..., dict[str, Any]]:
    """report(**overrides): a drift report of model fraud version 7 (see _report)."""
    return _report
