"""When to retrain: which alerts count, enough new labels, a cooldown, one run per model at a time. Pure: an
alert (or a manual request) and the model's state in, a decision with its reason out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANUAL = "retrain_requested"
"""The lifecycle stage a person's request (kestrel-retrain trigger) is recorded under."""


@dataclass(frozen=True)
class RetrainPolicy:
    alerts: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {"FeatureDrift", "ScoreDrift", "PerformanceDegraded", "PerformanceEstimateDrop"}
        )
    )
    """Alert names (firing) that may start a run."""
    min_severity: str = "warning"
    """Alerts below this severity (info < warning < critical) never start a run."""
    min_new_labels: int = 2000
    """Labelled predictions since the champion's training window ended: fewer, and a retrain would learn
    nothing new (a person's request skips this rule, not the others)."""
    cooldown_s: float = 6 * 3600
    """Least time between the starts of two runs of one model."""


SEVERITY = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Decision:
    start: bool
    reason: str


def model_of(alert: Mapping[str, Any]) -> str | None:
    """The model an alert is about: its `model` (or `model_name`) label; None for platform alerts."""
    labels = alert.get("labels") or {}
    return labels.get("model") or labels.get("model_name")


def decide(
    policy: RetrainPolicy,
    trigger: Mapping[str, Any],
    *,
    running: str | None,
    last_started_ms: int | None,
    new_labels: int | None,
    now_ms: int,
) -> Decision:
    """Whether `trigger` (an alert record, or a lifecycle record of stage MANUAL) starts a run now.

    running: the id of the model's run in progress, if any; last_started_ms: when the last run started;
    new_labels: labelled predictions since the champion's training window (None: not counted, e.g. manual)."""
    manual = trigger.get("stage") == MANUAL
    if not manual:
        refusal = _alert_refusal(policy, trigger)
        if refusal:
            return Decision(False, refusal)
    what = "manual request" if manual else f"alert {trigger['name']}"
    if running is not None:
        return Decision(False, f"{what}: run {running} is in progress (one run per model at a time)")
    if last_started_ms is not None and now_ms - last_started_ms < policy.cooldown_s * 1000:
        left = policy.cooldown_s - (now_ms - last_started_ms) / 1000
        return Decision(False, f"{what}: in cooldown for {left:.0f} s more (cooldown {policy.cooldown_s:.0f} s)")
    if not manual and new_labels is not None and new_labels < policy.min_new_labels:
        return Decision(
            False,
            f"{what}: {new_labels} new labelled predictions since the last training, {policy.min_new_labels} needed",
        )
    return Decision(True, f"{what}: retraining")


def _alert_refusal(policy: RetrainPolicy, alert: Mapping[str, Any]) -> str | None:
    name = alert.get("name")
    if alert.get("status") != "firing":
        return f"alert {name} is {alert.get('status')}, not firing"
    if name not in policy.alerts:
        return f"alert {name} is not one that retrains ({', '.join(sorted(policy.alerts))})"
    if SEVERITY.get(str(alert.get("severity")), -1) < SEVERITY[policy.min_severity]:
        return f"alert {name} has severity {alert.get('severity')}, below {policy.min_severity}"
    if model_of(alert) is None:
        return f"alert {name} names no model (label model)"
    return None
