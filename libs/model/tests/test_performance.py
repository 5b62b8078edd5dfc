"""Reference performance: isotonic calibration, chunk metrics in time order, the band, and their JSON form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import isotonic_regression

from kestrel.model import Calibration, ModelError, ReferencePerformance, reference_performance
from kestrel.model.performance import METRICS, measure


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1)), min_size=1, max_size=80))
def test_calibration_is_the_isotonic_regression_of_the_labels_on_the_scores(rows):
    score = np.array([r[0] for r in rows], dtype=float) / 6
    y = np.array([r[1] for r in rows])
    unique, group = np.unique(score, return_inverse=True)
    weight = np.bincount(group)
    # scipy's isotonic regression on the per-score fraud rates, weighted by how many rows share the score.
    expected = isotonic_regression(np.bincount(group, weights=y) / weight, weights=weight).x
    assert np.allclose(Calibration.fit(score, y)(unique), expected)


def test_calibration_interpolates_between_blocks_and_holds_beyond_them():
    calibration = Calibration.fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 0, 1, 1]))
    assert calibration.knots.tolist() == [0.1, 0.2, 0.3, 0.4] and calibration.values.tolist() == [0, 0, 1, 1]
    assert calibration(np.array([0.0, 0.25, 0.9])).tolist() == [0.0, 0.5, 1.0]
    again = Calibration.from_json(json.loads(json.dumps(calibration.to_json())))
    assert np.array_equal(again.knots, calibration.knots) and np.array_equal(again.values, calibration.values)


def test_calibration_maps_a_miscalibrated_score_back_to_the_fraud_rate():
    rng = np.random.default_rng(1)
    p = rng.beta(0.3, 6, 200_000)
    y = rng.random(len(p)) < p
    calibration = Calibration.fit(np.sqrt(p), y)  # sqrt: scores far above the fraud rate
    grid = np.sqrt(np.array([0.02, 0.1, 0.3]))
    assert calibration(grid) == pytest.approx([0.02, 0.1, 0.3], abs=0.02)


def _holdout(n: int = 20_000, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(0.4, 8, n)
    return rng.random(n) < score, score


def test_chunks_are_consecutive_slices_of_the_holdout_measured_alone():
    y, score = _holdout()
    ref = reference_performance(y, score, threshold=0.3, chunks=8)
    assert ref.chunk_rows == (2500,) * 8 and sum(ref.chunk_positives) == y.sum()
    third = slice(5000, 7500)
    alone = measure(y[third], score[third], 0.3, ref.calibration)
    assert {m: ref.chunks[m][2] for m in METRICS} == alone
    assert ref.chunk_flagged[2] == (score[third] >= 0.3).sum()
    assert ref.overall == measure(y, score, 0.3, ref.calibration)


def test_band_is_the_chunk_mean_minus_and_plus_three_times_the_larger_standard_deviation():
    y, score = _holdout()
    ref = reference_performance(y, score, threshold=0.3)
    for metric in METRICS:
        values = np.array(ref.chunks[metric])
        mean, sd = values.mean(), max(values.std(ddof=1), ref.resampled_sd[metric])
        assert ref.band(metric) == pytest.approx(tuple(np.clip((mean - 3 * sd, mean + 3 * sd), 0, 1)))
        assert ref.band(metric, widen=2.0) == pytest.approx(tuple(np.clip((mean - 6 * sd, mean + 6 * sd), 0, 1)))
    assert ref.band("pr_auc", widen=1000.0) == (0.0, 1.0)  # every metric is a share: the band stays in [0, 1]


def test_bootstrap_spread_is_the_spread_of_fresh_chunks_of_the_same_traffic():
    y, score = _holdout(n=50_000)
    ref = reference_performance(y, score, threshold=0.3)  # chunks of 5,000 rows
    fresh = [measure(*_holdout(n=5000, seed=100 + i), 0.3, ref.calibration) for i in range(200)]
    for metric in ("pr_auc", "precision", "recall", "estimated_precision"):
        truth = np.std([f[metric] for f in fresh], ddof=1)
        assert ref.resampled_sd[metric] == pytest.approx(truth, rel=0.3), metric


def test_no_band_below_six_chunks_that_define_the_metric():
    y, score = _holdout()
    y[: len(y) // 2] = False  # no fraud in the first five of ten chunks: their recall and PR-AUC are undefined
    ref = reference_performance(y, score, threshold=0.3)
    assert sum(math.isnan(x) for x in ref.chunks["pr_auc"]) == 5
    assert ref.band("pr_auc") is None and ref.band("estimated_precision") is not None
    with pytest.raises(ModelError, match="at least 6"):
        reference_performance(y, score, threshold=0.3, chunks=5)


def test_json_round_trip_keeps_undefined_chunks_undefined():
    y, score = _holdout()
    y[:2000] = False
    ref = reference_performance(y, score, threshold=0.3)
    again = ReferencePerformance.from_json(json.loads(json.dumps(ref.to_json(), allow_nan=False)))
    assert math.isnan(again.chunks["recall"][0]) and again.chunks["recall"][1:] == ref.chunks["recall"][1:]
    assert again.overall == ref.overall and again.chunk_flagged == ref.chunk_flagged
    assert np.array_equal(again.calibration.values, ref.calibration.values)
