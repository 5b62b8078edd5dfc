"""Window performance: measured metrics against plain definitions, the minimum-label rules, CBPE, the band."""

from __future__ import annotations

import json

import fastavro
import numpy as np
import pytest

from kestrel.common.avro import read_schema
from kestrel.drift_monitor.performance import PerformancePolicy, PerformanceReport, assess
from kestrel.model import ReferencePerformance, metrics, reference_performance

THRESHOLD = 0.5
TOLERANCE = 0.03
"""CBPE against the truth: about three standard deviations of a precision or recall over 2,000 cases."""


def _fraud_probability(n: int, rng: np.random.Generator, a: float = 0.3, b: float = 6.0) -> np.ndarray:
    return rng.beta(a, b, n)


def _world(n: int, rng: np.random.Generator, a: float = 0.3, b: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn as Bernoulli(p); the model's score is sqrt(p): right ranking, far from calibrated."""
    p = _fraud_probability(n, rng, a, b)
    return np.sqrt(p), rng.random(n) < p


@pytest.fixture(scope="module")
def reference() -> ReferencePerformance:
    score, y = _world(200_000, np.random.default_rng(0))
    return reference_performance(y, score, THRESHOLD)  # ten chunks of 20,000 rows


def _plain_average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """sum over thresholds t (descending) of (recall(t) - recall(previous t)) * precision(t)."""
    total, previous_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        flagged = s >= t
        tp = sum(1 for yi, fi in zip(y, flagged) if yi and fi)
        recall = tp / y.sum()
        total += (recall - previous_recall) * tp / flagged.sum()
        previous_recall = recall
    return total


def _plain_roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg) / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_measured_metrics_equal_their_plain_definitions(seed, reference):
    rng = np.random.default_rng(seed)
    s = np.round(rng.random(400), 2)  # rounded: ties between scores
    y = rng.random(400) < s
    report = assess(s, s, y, THRESHOLD, reference)
    flagged = s >= THRESHOLD
    tp = int((y & flagged).sum())
    assert report.labelled == 400 and report.positives == y.sum()
    assert report.precision == pytest.approx(tp / flagged.sum(), abs=1e-12)
    assert report.recall == pytest.approx(tp / y.sum(), abs=1e-12)
    assert report.pr_auc == pytest.approx(_plain_average_precision(y, s), abs=1e-12)
    assert report.roc_auc == pytest.approx(_plain_roc_auc(y, s), abs=1e-12)


def test_below_the_minimum_labels_metrics_are_null_and_the_window_is_not_degraded(reference):
    rng = np.random.default_rng(1)
    s = rng.random(5000)
    policy = PerformancePolicy(min_labels=200, min_positives=10, min_flagged=10**9)
    few_labels = assess(s, s[:199], np.ones(199, dtype=bool), THRESHOLD, reference, policy)
    few_frauds = assess(s, s[:1000], np.arange(1000) < 9, THRESHOLD, reference, policy)
    for report in (few_labels, few_frauds):
        assert (report.pr_auc, report.roc_auc, report.precision, report.recall) == (None,) * 4
        assert not report.degraded and report.basis == "none"
    assert few_frauds.labelled == 1000 and few_frauds.positives == 9


def test_labels_are_zero_or_one_for_each_labelled_score(reference):
    s = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match="0 or 1"):
        assess(s, s, np.r_[np.zeros(9), np.nan], THRESHOLD, reference)  # nan would count as fraud
    with pytest.raises(ValueError, match="one per labelled score"):
        assess(s, s, np.zeros(9), THRESHOLD, reference)


def test_a_window_of_frauds_only_has_no_roc_auc(reference):
    s = np.linspace(0, 1, 300)
    report = assess(s, s, np.ones(300, dtype=bool), THRESHOLD, reference)
    assert report.roc_auc is None and report.pr_auc == pytest.approx(1.0)


@pytest.mark.parametrize(("a", "b"), [(0.3, 6.0), (0.6, 6.0), (0.3, 3.0), (0.2, 9.0)])
def test_cbpe_tracks_precision_and_recall_when_scores_move_but_p_fraud_given_score_does_not(a, b, reference):
    rng = np.random.default_rng(int(a * 10 + b))
    score, y = _world(50_000, rng, a, b)
    report = assess(score, score[:0], y[:0], THRESHOLD, reference)
    precision, recall = metrics.precision_recall(y, score >= THRESHOLD)
    assert report.estimated_precision == pytest.approx(precision, abs=TOLERANCE)
    assert report.estimated_recall == pytest.approx(recall, abs=TOLERANCE)
    # The calibration is what makes it work: the raw scores as probabilities are far off.
    raw = metrics.expected_precision_recall(score, score >= THRESHOLD)
    assert abs(raw[0] - precision) > 3 * TOLERANCE


def test_stationary_windows_stay_inside_the_band_with_and_without_labels(reference):
    rng = np.random.default_rng(7)
    flagged_as_degraded = {"measured": 0, "estimated": 0}
    for _ in range(200):
        score, y = _world(20_000, rng)
        flagged_as_degraded["measured"] += assess(score, score, y, THRESHOLD, reference).degraded
        flagged_as_degraded["estimated"] += assess(score, score[:0], y[:0], THRESHOLD, reference).degraded
    assert flagged_as_degraded["measured"] <= 2 and flagged_as_degraded["estimated"] <= 2, flagged_as_degraded


def test_fraud_the_model_stops_seeing_is_degraded_once_labels_arrive(reference):
    rng = np.random.default_rng(8)
    score, y = _world(20_000, rng)
    evading = y & (rng.random(len(y)) < 0.3)  # a third of the frauds now look like ordinary payments
    score[evading] = np.sqrt(_fraud_probability(int(evading.sum()), rng))
    report = assess(score, score, y, THRESHOLD, reference)
    assert report.basis == "measured" and report.degraded
    assert report.pr_auc is not None and report.band_low is not None and report.pr_auc < report.band_low


def test_a_shift_towards_doubtful_scores_is_degraded_before_any_label(reference):
    rng = np.random.default_rng(9)
    score, y = _world(20_000, rng)
    doubtful = np.sqrt(rng.uniform(0.25, 0.28, 300))  # traffic the model is unsure of, just above the threshold
    score = np.r_[score, doubtful]
    report = assess(score, score[:0], y[:0], THRESHOLD, reference)
    assert report.basis == "estimated" and report.degraded
    assert report.estimated_precision is not None and report.precision_band_low is not None
    assert report.estimated_precision < report.precision_band_low


def test_small_windows_get_a_wider_band_never_a_narrower_one(reference):
    rng = np.random.default_rng(10)
    small, small_y = _world(2_000, rng)
    large, large_y = _world(100_000, rng)
    small_report = assess(small, small, small_y, THRESHOLD, reference)
    large_report = assess(large, large, large_y, THRESHOLD, reference)
    plain = reference.band("pr_auc")
    assert plain is not None and large_report.band_low == plain[0]
    assert small_report.band_low is not None and small_report.band_low < plain[0]


def test_without_a_reference_or_at_another_threshold_nothing_is_held_to_a_band(reference):
    rng = np.random.default_rng(11)
    score, y = _world(20_000, rng)
    old = assess(score, score, y, THRESHOLD, None)
    assert old.pr_auc is not None and old.band_low is None and old.estimated_precision is None
    assert not old.degraded and old.basis == "none"
    elsewhere = assess(score, score[:0], y[:0], 0.7, reference)
    assert elsewhere.estimated_precision is not None and elsewhere.precision_band_low is None
    assert elsewhere.basis == "none" and elsewhere.band_low is not None


def _record_schema() -> dict[str, object]:
    report = read_schema("drift_report")
    (field,) = [f for f in report["fields"] if f["name"] == "performance"]
    return {**field["type"][1], "namespace": report["namespace"]}


def test_to_record_is_a_performance_report_record(reference):
    rng = np.random.default_rng(12)
    score, y = _world(20_000, rng)
    schema = _record_schema()
    for report in (assess(score, score, y, THRESHOLD, reference), PerformanceReport(labelled=0, positives=0)):
        record = report.to_record()
        assert list(record) == [f["name"] for f in schema["fields"]]  # type: ignore[index]
        assert fastavro.validate(record, fastavro.parse_schema(json.loads(json.dumps(schema))), raise_errors=True)
