"""When a run starts, and why not: pure."""

from __future__ import annotations

from kestrel.retrain_trigger.policy import MANUAL, RetrainPolicy, decide

H = 3_600_000
NOW = 100 * H


def alert(name: str = "FeatureDrift", status: str = "firing", severity: str = "warning", **labels: str) -> dict:
    return {"name": name, "status": status, "severity": severity, "labels": {"model": "fraud", **labels}}


def test_a_firing_drift_alert_with_new_labels_starts_a_run():
    decision = decide(RetrainPolicy(), alert(), running=None, last_started_ms=None, new_labels=5000, now_ms=NOW)
    assert decision.start and "FeatureDrift" in decision.reason


def test_each_rule_refuses_with_its_reason():
    policy = RetrainPolicy(min_new_labels=2000, cooldown_s=6 * 3600)
    cases = {
        "resolved, not firing": (alert(status="resolved"), None, None, 5000),
        "not one that retrains": (alert(name="ConsumerLagHigh"), None, None, 5000),
        "below warning": (alert(severity="info"), None, None, 5000),
        "one run per model": (alert(), "run-7", None, 5000),
        "in cooldown": (alert(), None, NOW - H, 5000),
        "1999 new labelled predictions": (alert(), None, None, 1999),
    }
    for expected, (trigger, running, last, labels) in cases.items():
        decision = decide(policy, trigger, running=running, last_started_ms=last, new_labels=labels, now_ms=NOW)
        assert not decision.start and expected in decision.reason, (expected, decision.reason)
    no_model = {"name": "FeatureDrift", "status": "firing", "severity": "critical", "labels": {}}
    assert (
        "names no model"
        in decide(policy, no_model, running=None, last_started_ms=None, new_labels=1, now_ms=NOW).reason
    )


def test_a_manual_request_skips_the_label_rule_but_not_the_others():
    manual = {"stage": MANUAL, "model_name": "fraud", "version": ""}
    assert decide(RetrainPolicy(), manual, running=None, last_started_ms=None, new_labels=0, now_ms=NOW).start
    assert not decide(RetrainPolicy(), manual, running="r1", last_started_ms=None, new_labels=0, now_ms=NOW).start
    after_cooldown = NOW - 7 * H
    assert decide(
        RetrainPolicy(), alert(), running=None, last_started_ms=after_cooldown, new_labels=9999, now_ms=NOW
    ).start
