"""The demo's account of the loop: which records it keeps, when the loop counts as closed, and what it says."""

from __future__ import annotations

from typing import Any

from kestrel.devstack.loop_story import ALERTS, LIFECYCLE, PREDICTIONS, REPORTS, Seen, describe, outcome

ONSET = 1_000_000


def report(version: str, pr_auc: float | None, degraded: bool = False) -> dict[str, Any]:
    perf = {"pr_auc": pr_auc, "degraded": degraded} if pr_auc is not None else None
    return {
        "model_version": version,
        "status": "drift" if degraded else "ok",
        "window_size": 5700,
        "drifted_features": ["country_new_24h"] if degraded else [],
        "performance": perf,
    }


def stage(name: str, version: str = "2", reason: str = "why", **metrics: float) -> dict[str, Any]:
    return {"model_name": "m", "version": version, "stage": name, "reason": reason, "metrics": metrics}


def prediction(version: str, source: str = "stream") -> dict[str, Any]:
    return {"model_name": "m", "model_version": version, "source": source}


def story(*records: tuple[int, str, dict[str, Any]]) -> Seen:
    seen = Seen("m")
    for ms, topic, value in records:
        seen.add(ONSET + ms, topic, value)
    return seen


def closed_loop() -> Seen:
    return story(
        (-5000, PREDICTIONS, prediction("1")),
        (20_000, REPORTS, report("1", 0.2, degraded=True)),
        (21_000, ALERTS, {"name": "PerformanceDegraded", "status": "firing", "severity": "critical"}),
        (22_000, LIFECYCLE, stage("retrain_started", "1")),
        (30_000, LIFECYCLE, stage("evaluated", challenger_pr_auc=0.73, champion_pr_auc=0.55)),
        (31_000, LIFECYCLE, stage("shadow_started")),
        (31_500, PREDICTIONS, prediction("2", "shadow")),
        (52_000, LIFECYCLE, stage("promoted")),
        (53_500, PREDICTIONS, prediction("2")),
    )


def test_only_the_first_prediction_of_each_version_and_source_and_only_this_models_records_are_kept():
    seen = Seen("m")
    assert seen.add(1, PREDICTIONS, prediction("1"))
    assert not seen.add(2, PREDICTIONS, prediction("1"))
    assert seen.add(3, PREDICTIONS, prediction("1", "shadow"))
    assert not seen.add(4, LIFECYCLE, {**stage("promoted"), "model_name": "other"})
    assert len(seen.records) == 2


def test_the_loop_closes_when_the_stream_scorer_serves_the_promoted_version():
    seen = closed_loop()
    closed, lines = outcome(seen, ONSET)
    assert seen.finished() and closed
    assert lines[0] == "The loop closed: drift onset -> v2 serving in 53.5 s"
    assert any("alert firing" in line and "+21.0 s" in line for line in lines)
    assert lines[-1].strip().startswith("stream scorer serves v2") and lines[-1].endswith("+53.5 s")


def test_a_promotion_the_scorer_has_not_followed_yet_is_not_closed():
    seen = story((52_000, LIFECYCLE, stage("promoted")), (53_000, PREDICTIONS, prediction("1")))
    closed, lines = outcome(seen, ONSET)
    assert not seen.finished() and not closed
    assert "v2 was promoted but the stream scorer had not scored with it in time" in lines[0]


def test_a_rejected_challenger_ends_the_wait_and_the_outcome_gives_the_lifecycle_reason():
    seen = story(
        (22_000, LIFECYCLE, stage("retrain_started", "1")),
        (40_000, LIFECYCLE, stage("rejected", reason="[r1] worse live than on the holdout: pr_auc 0.4 vs 0.7")),
    )
    closed, lines = outcome(seen, ONSET)
    assert seen.finished() and not closed
    assert lines[0] == (
        "The loop did not close: the run ended rejected at v2: [r1] worse live than on the holdout: pr_auc 0.4 vs 0.7"
    )


def test_without_a_degraded_window_the_outcome_says_so_with_the_lowest_quality_seen():
    seen = story((10_000, REPORTS, report("1", 0.81)), (30_000, REPORTS, report("1", 0.62)))
    closed, lines = outcome(seen, ONSET)
    assert not closed and lines == [
        "The loop did not close: time ran out before a drift report showed degraded quality "
        "(lowest window PR-AUC: 0.62)"
    ]


def test_a_run_still_going_at_the_deadline_names_its_last_step():
    seen = story(
        (20_000, REPORTS, report("1", 0.2, degraded=True)),
        (22_000, LIFECYCLE, stage("retrain_started", "1", reason="[r1] alert PerformanceDegraded")),
    )
    _, lines = outcome(seen, ONSET)
    assert (
        lines[0]
        == "The loop did not close: time ran out at lifecycle retrain_started v1: [r1] alert PerformanceDegraded"
    )


def test_timeline_lines_show_quality_and_the_gates_metrics():
    assert "PR-AUC 0.20  QUALITY DEGRADED" in describe(REPORTS, report("1", 0.2, degraded=True))
    assert describe(REPORTS, report("1", None)).endswith("PR-AUC -")
    line = describe(LIFECYCLE, stage("evaluated", challenger_pr_auc=0.731, champion_pr_auc=0.546))
    assert line.endswith("(challenger_pr_auc 0.731, champion_pr_auc 0.546)")
    assert " retrain_started - " in describe(LIFECYCLE, stage("retrain_started", ""))
