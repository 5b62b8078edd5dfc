"""The loop page: buckets of quality, drift share and serving version; the timeline; the HTML."""

from __future__ import annotations

import numpy as np

from kestrel.retrain_trigger.timeline import MIN_LABELLED, buckets, drift_share, render_html, render_text, steps

HOUR = 3_600_000
T0 = 1_796_000_000_000 - 1_796_000_000_000 % HOUR


def _rows(start: int, version: str, n: int, good: bool, source: str = "stream") -> list[tuple]:
    """n labelled predictions; a good model ranks every fraud above every legit payment, a bad one inverts it."""
    rng = np.random.default_rng(start % 1000)
    labels = rng.random(n) < 0.2
    scores = np.where(labels, 0.9, 0.1) if good else np.where(labels, 0.1, 0.9)
    return [
        (start + i, version, source, float(s), bool(y)) for i, (s, y) in enumerate(zip(scores, labels, strict=True))
    ]


def test_buckets_measure_the_served_model_and_leave_shadow_scores_out() -> None:
    rows = _rows(T0, "1", 300, good=True) + _rows(T0 + HOUR, "1", 300, good=False)
    rows += _rows(T0 + HOUR, "2", 300, good=True, source="shadow")  # scored, never served
    rows += _rows(T0 + 2 * HOUR, "2", 300, good=True)
    reports = [
        {"window_start_ms": T0 + HOUR + 5, "drift_share": 0.4},
        {"window_start_ms": T0 + HOUR, "drift_share": 0.1},
    ]
    out = buckets(rows, reports, HOUR)
    assert [b.start_ms for b in out] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert [b.serving for b in out] == ["1", "1", "2"]
    assert out[0].pr_auc == 1.0 and out[1].pr_auc is not None and out[1].pr_auc < 0.5 and out[2].pr_auc == 1.0
    assert [b.drift_share for b in out] == [None, 0.4, None]  # the most drifted window of the bucket


def test_a_bucket_with_few_labels_has_no_quality_point() -> None:
    rows = _rows(T0, "1", MIN_LABELLED - 1, good=True) + [(T0 + 5, "1", "stream", 0.5, None)] * 50
    (only,) = buckets(rows, [], HOUR)
    assert only.pr_auc is None and only.labelled == MIN_LABELLED - 1 and only.serving == "1"


def test_drift_share_counts_features_not_the_score() -> None:
    metrics = [
        {"name": "amount", "drifted": True},
        {"name": "hour", "drifted": False},
        {"name": "score", "kind": "score", "drifted": True},
    ]
    assert drift_share(metrics) == 0.5
    assert drift_share([]) is None


def test_the_timeline_puts_the_first_drift_of_a_version_before_the_runs() -> None:
    reports = [
        {
            "window_start_ms": T0 + HOUR,
            "window_end_ms": T0 + 2 * HOUR,
            "model_version": "1",
            "drifted": True,
            "drift_share": 0.25,
        },
        {
            "window_start_ms": T0 + 2 * HOUR,
            "window_end_ms": T0 + 3 * HOUR,
            "model_version": "1",
            "drifted": True,
            "drift_share": 0.5,
        },
        {"window_start_ms": T0, "window_end_ms": T0 + HOUR, "model_version": "1", "drifted": False, "drift_share": 0.0},
    ]
    audit = [
        {
            "at_ms": T0 + 3 * HOUR,
            "version": "2",
            "action": "registered",
            "alias": None,
            "reason": "PR-AUC 0.91 vs 0.62",
        },
        {"at_ms": T0 + 4 * HOUR, "version": "2", "action": "promoted", "alias": "champion", "reason": "shadow held"},
    ]
    timeline = steps(reports, audit)
    assert [s.what for s in timeline] == [
        "drift reported on version 1, 25% of features",
        "registered version 2: PR-AUC 0.91 vs 0.62",
        "promoted champion version 2: shadow held",
    ]
    assert render_text(timeline).splitlines()[0].endswith("drift reported on version 1, 25% of features")
    assert render_text([]) == "nothing yet"


def test_the_page_is_self_contained_with_three_charts_and_the_timeline() -> None:
    series = buckets(_rows(T0, "1", 300, good=True) + _rows(T0 + HOUR, "2", 300, good=True), [], HOUR)
    page = render_html(
        "fraud<1>",
        series,
        steps([], [{"at_ms": T0, "version": "2", "action": "promoted", "alias": "champion", "reason": "ok"}]),
    )
    assert page.count("<svg") == 3 and page.count("<polyline") == 2  # no drift share points: no line
    assert "fraud&lt;1&gt;" in page and "promoted champion version 2: ok" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
