"""A run's steps and their lifecycle records: pure."""

from __future__ import annotations

import json

from kestrel.retrain_trigger import runs
from kestrel.retrain_trigger.runs import DONE, LOADING, SHADOWING, Run, judge_shadow

PASSED = {
    "version": "2",
    "champion_version": "1",
    "passed": True,
    "reasons": ["pr_auc 0.73 passes"],
    "challenger": {"pr_auc": 0.73, "precision": 0.98},
    "champion": {"pr_auc": 0.55},
}


def stages(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["stage"], r["version"]) for r in records]


def test_a_passing_run_goes_training_loading_shadowing_promoted():
    run, out = runs.start("r1", "fraud", "alert FeatureDrift", 1000)
    assert stages(out) == [("retrain_started", "")] and out[0]["reason"].startswith("[r1] alert")
    run, out = runs.job_done(run, PASSED, 2000)
    assert run.step == LOADING and run.holdout == {"pr_auc": 0.73, "precision": 0.98}
    assert stages(out) == [("evaluated", "2")] and out[0]["metrics"]["champion_pr_auc"] == 0.55
    run, out = runs.loaded(run, 600, 3000)
    assert run.step == SHADOWING and run.shadow_until_ms == 603_000
    assert stages(out) == [("loaded", "2"), ("shadow_started", "2")]
    verdict = judge_shadow(run.holdout, {"precision": 0.97}, tolerance=0.05)
    run, out = runs.shadow_over(run, verdict, 604_000)
    assert (run.step, run.outcome) == (DONE, "promoted") and stages(out) == [("promoted", "2")]
    assert Run.from_json(json.loads(json.dumps(run.to_json()))) == run  # what the service's table stores


def test_a_gate_refusal_and_a_bad_shadow_end_in_rejection_the_champion_staying():
    run, _ = runs.start("r2", "fraud", "manual", 0)
    reasons = ["pr_auc 0.5600 fails: at least champion 0.6 + 0.005", "roc_auc 0.9 passes: at most 0.005 below"]
    refused, out = runs.job_done(run, PASSED | {"passed": False, "reasons": reasons}, 1)
    assert (refused.step, refused.outcome) == (DONE, "rejected") and stages(out) == [
        ("evaluated", "2"),
        ("rejected", "2"),
    ]
    assert out[-1]["reason"] == "[r2] gate: pr_auc 0.5600 fails: at least champion 0.6 + 0.005"  # the rule it broke
    shadowing, _ = runs.loaded(runs.job_done(run, PASSED, 1)[0], 60, 2)
    verdict = judge_shadow(shadowing.holdout, {"pr_auc": 0.60, "precision": 0.99}, tolerance=0.05)
    assert not verdict.promote and "pr_auc 0.6000 vs holdout 0.7300" in verdict.reason
    done, out = runs.shadow_over(shadowing, verdict, 3)
    assert done.outcome == "rejected" and stages(out) == [("rejected", "2")]


def test_without_live_metrics_the_holdout_decides_and_says_so():
    verdict = judge_shadow({"pr_auc": 0.7}, {}, tolerance=0.05)
    assert verdict.promote and "no live metric" in verdict.reason


def test_a_failed_step_and_a_rollback_are_records_too():
    run, _ = runs.start("r3", "fraud", "manual", 0)
    done, out = runs.failed(run, "Triton refused versions [1, 2]", 5)
    assert done.outcome == "failed" and stages(out) == [("failed", "")]
    back = runs.rolled_back("fraud", "1", "worse on live traffic", 9)
    assert (back["stage"], back["version"], back["model_name"]) == ("rolled_back", "1", "fraud")


def test_worse_than_its_holdout_but_better_than_the_champion_on_the_same_events_is_promoted():
    holdout, live = {"pr_auc": 0.64}, {"pr_auc": 0.30, "pr_auc_upper": 0.40}
    assert not judge_shadow(holdout, live, tolerance=0.15).promote
    assert not judge_shadow(holdout, live, tolerance=0.15, champion_live={"pr_auc": 0.35}).promote
    verdict = judge_shadow(holdout, live, tolerance=0.15, champion_live={"pr_auc": 0.12})
    assert verdict.promote and "better than the champion on the same events: 0.3000 vs 0.1200" in verdict.reason
