"""The service's step function over a model's runs-table entry, and the job's and shadow's results: pure."""

from __future__ import annotations

import numpy as np

from kestrel.retrain_trigger import steps
from kestrel.retrain_trigger.policy import MANUAL, RetrainPolicy
from kestrel.retrain_trigger.runs import DONE, LOADING, SHADOWING, TRAINING, Run, judge_shadow
from kestrel.retrain_trigger.work import job_command, job_result, live_metrics, served_versions

POLICY = RetrainPolicy(min_new_labels=100, cooldown_s=60)
REQUEST = {"model_name": "fraud", "stage": MANUAL, "version": "", "reason": "ops asks", "at": 0}
ALERT = {"name": "FeatureDrift", "status": "firing", "severity": "warning", "labels": {"model": "fraud"}}
OUTCOME = {"version": "2", "champion_version": "1", "passed": True, "reasons": ["ok"], "challenger": {"pr_auc": 0.7}}


def started(now_ms: int = 1_000) -> steps.Outcome:
    return steps.trigger(steps.Entry(2), "fraud", REQUEST, "k1", POLICY, new_labels=None, now_ms=now_ms)


def test_a_request_starts_a_run_with_its_record_in_the_outbox_and_the_job_to_start():
    out = started()
    assert out.decision is not None and out.decision.start and out.start == steps.JOB
    assert out.entry.run is not None and out.entry.run.step == TRAINING and out.entry.partition == 2
    assert [r["stage"] for r in out.entry.outbox] == ["retrain_started"]
    assert out.entry.run.reason == "ops asks" and out.entry.run.run_id == steps.run_id("fraud", "k1")


def test_the_same_trigger_read_again_starts_nothing_even_after_the_run_ended():
    entry = started().entry
    again = steps.trigger(entry, "fraud", REQUEST, "k1", POLICY, new_labels=None, now_ms=10**9)
    assert again.entry == entry and again.decision is not None and not again.decision.start


def test_an_alert_is_refused_in_cooldown_and_with_too_few_labels():
    done = steps.Entry(0, Run("r0", "fraud", DONE, "earlier", 1_000, outcome="promoted"))
    cooling = steps.trigger(done, "fraud", ALERT, "a1", POLICY, new_labels=500, now_ms=30_000)
    assert cooling.decision is not None and "cooldown" in cooling.decision.reason and cooling.entry == done
    few = steps.trigger(done, "fraud", ALERT, "a2", POLICY, new_labels=5, now_ms=10**9)
    assert few.decision is not None and "5 new labelled" in few.decision.reason
    ok = steps.trigger(done, "fraud", ALERT, "a3", POLICY, new_labels=500, now_ms=10**9)
    assert ok.start == steps.JOB and ok.entry.run is not None and "FeatureDrift" in ok.entry.run.reason


def test_steps_advance_only_the_run_and_step_they_name():
    entry = steps.published(started().entry)
    run_id = entry.run.run_id
    shadow = {"shadow_s": 5.0, "tolerance": 0.05}
    assert steps.advance(entry, {"kind": "loaded", "run_id": run_id}, **shadow, now_ms=2).entry == entry
    wrong = {"kind": "job_done", "run_id": "other", "outcome": OUTCOME}
    assert steps.advance(entry, wrong, **shadow, now_ms=2).entry == entry
    trained = steps.advance(entry, {"kind": "job_done", "run_id": run_id, "outcome": OUTCOME}, **shadow, now_ms=2)
    assert trained.entry.run.step == LOADING and trained.start == steps.LOAD
    assert trained.entry.run.artifact is None and [r["stage"] for r in trained.entry.outbox] == ["evaluated"]
    loaded = steps.advance(trained.entry, {"kind": "loaded", "run_id": run_id}, **shadow, now_ms=10)
    assert loaded.entry.run.step == SHADOWING and loaded.entry.run.shadow_until_ms == 5010
    assert steps.due(loaded.entry, 5009) is None and steps.due(loaded.entry, 5010) == steps.MEASURE
    worse = {"kind": "measured", "run_id": run_id, "live": {"pr_auc": 0.4}, "champion_live": {"pr_auc": 0.5}}
    judged = steps.advance(loaded.entry, dict(worse, labelled=300), **shadow, now_ms=6000)
    assert judged.entry.run.outcome == "rejected" and judged.records[-1]["stage"] == "rejected"
    metrics = judged.records[-1]["metrics"]
    assert metrics == {"live_pr_auc": 0.4, "champion_live_pr_auc": 0.5, "shadow_labelled": 300.0}
    assert steps.advance(judged.entry, worse, **shadow, now_ms=7000).entry == judged.entry  # a replay


def test_a_failed_job_or_load_ends_the_run_and_a_mark_resumes_the_work_a_run_waits_for():
    entry = started().entry
    run_id = entry.run.run_id
    assert steps.due(entry, 0) == steps.JOB
    failed = steps.advance(
        entry, {"kind": "job_failed", "run_id": run_id, "reason": "boom"}, shadow_s=1, tolerance=0, now_ms=1
    )
    assert failed.entry.run.outcome == "failed" and steps.due(failed.entry, 10**12) is None
    assert steps.Entry.from_json(failed.entry.to_json()) == failed.entry


def test_the_job_result_is_its_last_json_line_or_its_last_error_line():
    run = Run("r1", "fraud", TRAINING, "why", 0)
    assert job_result(run, 0, 'log line\n{"passed": true, "version": "2"}\n', "")["kind"] == "job_done"
    assert job_result(run, 1, "", "warning\nkestrel-retrain-job: no labelled stream predictions\n") == {
        "kind": "job_failed",
        "run_id": "r1",
        "reason": "training job: kestrel-retrain-job: no labelled stream predictions",
    }
    assert job_result(run, 0, "not json\n", "")["reason"] == "training job printed no outcome"


def test_the_job_command_and_the_versions_served_beside_each_other():
    from kestrel.retrain_trigger.settings import RetrainTriggerSettings

    s = RetrainTriggerSettings(job_command="nice -n 5 kestrel-retrain-job", train_hours=12)
    command = job_command(s, Run("r1", "fraud", TRAINING, "alert X", 0))
    assert command[:4] == ["nice", "-n", "5", "kestrel-retrain-job"] and "[r1] alert X" in command
    assert served_versions(Run("r1", "fraud", LOADING, "", 0, challenger="10", champion="9")) == (9, 10)
    assert served_versions(Run("r1", "fraud", LOADING, "", 0, challenger="1")) == (1,)


def test_live_metrics_need_enough_labels_and_both_classes():
    assert live_metrics([0, 1] * 5, [0.1, 0.9] * 5, 0.5, min_labels=20) == {}
    assert live_metrics([0] * 30, [0.1] * 30, 0.5, min_labels=20) == {}
    live = live_metrics([0, 1] * 15, [0.1, 0.9] * 15, 0.5, min_labels=20)
    assert live["pr_auc"] == 1.0 and live["f1"] == 1.0


def test_live_metrics_need_enough_frauds_and_precision_enough_flags():
    labels = [1] * 10 + [0] * 290
    assert live_metrics(labels, [0.9] * 10 + [0.1] * 290, 0.5, min_labels=100, min_positives=30) == {}
    labels = [1] * 40 + [0] * 260
    few_flagged = [0.9] * 7 + [0.3] * 33 + [0.1] * 260  # 7 flagged: precision on 7 payments is noise
    live = live_metrics(labels, few_flagged, 0.5, min_labels=100, min_positives=30)
    assert "pr_auc" in live and "recall" in live and "precision" not in live and "f1" not in live
    flagged = [0.9] * 35 + [0.3] * 5 + [0.1] * 260
    assert "precision" in live_metrics(labels, flagged, 0.5, min_labels=100, min_positives=30)


def test_a_measured_live_metric_is_worse_only_when_its_upper_bound_is():
    rng = np.random.default_rng(5)
    y = rng.random(6000) < 0.01  # a short shadow: about 60 frauds
    scores = np.clip(0.3 * y + rng.normal(0.2, 0.15, y.size), 0, 1)
    live = live_metrics(y.astype(int).tolist(), scores.tolist(), 0.5, min_labels=100, min_positives=30)
    assert live["pr_auc_upper"] > live["pr_auc"]
    near = {"pr_auc": live["pr_auc"] + 0.15 + (live["pr_auc_upper"] - live["pr_auc"]) / 2}
    assert judge_shadow(near, live, tolerance=0.15).promote  # below the holdout, inside the noise
    far = {"pr_auc": live["pr_auc_upper"] + 0.16}
    verdict = judge_shadow(far, live, tolerance=0.15)
    assert not verdict.promote and "95% upper bound" in verdict.reason
