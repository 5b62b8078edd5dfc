"""The shadow's label-free verdict: CBPE estimates from the challenger's calibration against its holdout's."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.featureset import load_feature_set
from kestrel.model import TrainConfig, build, save, train
from kestrel.model.dataset import from_matrix
from kestrel.model.learners import MLPConfig
from kestrel.retrain_trigger.runs import judge_shadow
from kestrel.retrain_trigger.work import estimates


@pytest.fixture(scope="module")
def challenger(tmp_path_factory):
    """A small trained artifact with its reference performance, and rows like its training data."""
    fs = load_feature_set("card")
    rng = np.random.default_rng(1)
    X = rng.lognormal(size=(8000, len(fs.names)))
    y = (X[:, 0] + rng.normal(scale=0.5, size=len(X)) > 3).astype(np.int8)
    t = 1_700_000_000_000 + np.arange(len(y)) * 1000
    data = from_matrix(X, y, t, fs)
    result = train(data, TrainConfig(mlp=MLPConfig(epochs=10)))
    folder = save(build(result, data, "fraud", 2), tmp_path_factory.mktemp("artifacts"))
    return folder, result.network.predict(X[-2000:])


def test_scores_like_the_holdouts_estimate_what_the_holdout_did_and_pass(challenger):
    folder, scores = challenger
    live, holdout = estimates(str(folder), scores.tolist(), 0.5, min_scores=100)
    assert set(live) == {"estimated_precision", "estimated_recall"} and set(holdout) == {"estimated_precision"}
    assert live["estimated_precision"] == pytest.approx(holdout["estimated_precision"], abs=0.1)
    assert judge_shadow(holdout, live, tolerance=0.05).promote


def test_a_challenger_unsure_of_what_it_flags_live_is_rejected_without_a_label(challenger):
    folder, scores = challenger
    rng = np.random.default_rng(2)
    flagged = scores >= 0.5
    borderline = np.where(flagged, 0.5 + 0.05 * rng.random(len(scores)), scores)  # live flags only just pass
    live, holdout = estimates(str(folder), borderline.tolist(), 0.5, min_scores=100)
    verdict = judge_shadow(holdout, live, tolerance=0.05)
    assert not verdict.promote and "estimated_precision" in verdict.reason, verdict.reason


def test_too_few_scores_or_no_artifact_give_no_estimate(challenger):
    folder, scores = challenger
    assert estimates(str(folder), scores[:99].tolist(), 0.5, min_scores=100) == ({}, {})
    assert estimates(None, scores.tolist(), 0.5, min_scores=100) == ({}, {})
