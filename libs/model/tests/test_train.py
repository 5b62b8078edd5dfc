"""Training: quality over trivial baselines, the Newton solution, determinism, time-ordered holdout."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.model import ModelError, TrainConfig, compare, from_matrix, time_split, train
from kestrel.model.learners import MLPConfig, fit_logreg
from kestrel.model.metrics import pr_auc
from kestrel.model.network import sigmoid

FAST = TrainConfig(mlp=MLPConfig(epochs=12))


def test_the_model_beats_every_single_feature_and_the_base_rate_by_a_margin(synthetic):
    _, holdout = time_split(synthetic)
    best_single = max(max(pr_auc(holdout.y, col), pr_auc(holdout.y, -col)) for col in holdout.X.T)
    scores = compare(synthetic, FAST)
    assert scores[TrainConfig.kind]["pr_auc"] > best_single + 0.1, (scores, best_single)
    for kind, metrics in scores.items():
        assert metrics["pr_auc"] > 10 * holdout.y.mean(), kind
        assert metrics["roc_auc"] > 0.9, kind


def test_auto_picks_the_better_holdout_pr_auc_and_records_every_candidate(synthetic):
    result = train(synthetic, TrainConfig(kind="auto", mlp=MLPConfig(epochs=12)))
    assert set(result.candidates) == {"logreg", "mlp"}
    assert result.holdout == max(result.candidates.values(), key=lambda m: m["pr_auc"])
    assert result.network.kind == result.kind
    assert result.details["rows"] == len(synthetic) and result.details["refit_on_all_rows"]


def test_reference_performance_is_the_holdout_fit_measured_on_the_holdout(synthetic):
    result = train(synthetic, TrainConfig(threshold=0.3, mlp=MLPConfig(epochs=12)))
    ref = result.performance
    assert ref is not None and ref.threshold == 0.3
    assert ref.overall["pr_auc"] == result.holdout["pr_auc"] and ref.overall["roc_auc"] == result.holdout["roc_auc"]
    assert sum(ref.chunk_rows) == result.details["holdout_rows"] and len(ref.chunk_rows) == 10
    assert ref.band("pr_auc") is not None
    # Calibrated on the holdout, the estimate of the holdout's precision is the measured one.
    assert ref.overall["estimated_precision"] == pytest.approx(ref.overall["precision"], abs=0.02)
    with pytest.raises(ModelError, match="threshold"):
        TrainConfig(threshold=1.5)


def test_logistic_regression_reaches_the_regularised_optimum():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((2000, 5))
    y = (rng.random(2000) < sigmoid(Z @ np.array([1.0, -2.0, 0.5, 0.0, 0.0]) - 1)).astype(float)
    ((W, b),) = fit_logreg(Z, y)
    w = W[:, 0]
    grad = Z.T @ (sigmoid(Z @ w + b[0]) - y) + 1.0 * w  # default l2 = 1
    assert np.abs(grad).max() < 1e-6
    assert np.allclose(w[:3], [1.0, -2.0, 0.5], atol=0.25)


def test_training_is_deterministic(synthetic):
    small = synthetic.take(slice(0, 5000))
    a, b = (train(small, FAST).network for _ in range(2))
    assert np.array_equal(a.predict(small.X), b.predict(small.X))


def test_holdout_is_the_latest_rows(feature_set):
    X = np.arange(40, dtype=float)[:, None].repeat(len(feature_set.names), axis=1)
    t = np.arange(40)[::-1]  # given newest first: from_matrix sorts by time
    data = from_matrix(X, np.arange(40) % 2, t, feature_set)
    early, late = time_split(data, holdout=0.25)
    assert early.event_time.max() < late.event_time.min() and len(late) == 10


def test_bad_training_data_is_refused_with_a_reason(feature_set):
    d = len(feature_set.names)
    with pytest.raises(ModelError, match="columns"):
        from_matrix(np.zeros((4, d - 1)), np.zeros(4), np.arange(4), feature_set)
    with pytest.raises(ModelError, match="NaN"):
        from_matrix(np.full((4, d), np.nan), np.zeros(4), np.arange(4), feature_set)
    with pytest.raises(ModelError, match="one class"):
        time_split(from_matrix(np.zeros((10, d)), np.zeros(10), np.arange(10), feature_set))
