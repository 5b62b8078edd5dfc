"""The gate on generated scores: a real improvement passes, a small one or a lost guard metric does not."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.retrain_trigger.gate import GatePolicy, _Weighted, decide, scores_summary


def scored(seed: int, signal: float, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.05
    logits = rng.normal(size=n) + signal * y
    return y, 1 / (1 + np.exp(-(logits - 3)))


def test_a_clearly_better_challenger_passes_with_every_reason_given():
    y, champion = scored(1, 2.0)
    rng = np.random.default_rng(2)
    challenger = 1 / (1 + np.exp(-(rng.normal(size=len(y)) + 3.5 * y - 3)))
    decision = decide(y, challenger, champion, 0.5)
    assert decision.passed, decision.reasons
    assert decision.challenger["pr_auc"] > decision.champion["pr_auc"] + 0.005
    assert len(decision.reasons) == 3 and all("passes" in r for r in decision.reasons)


def test_the_same_model_does_not_beat_itself_by_the_margin():
    y, scores = scored(1, 2.0)
    decision = decide(y, scores, scores, 0.5)
    assert not decision.passed
    assert decision.reasons[0].startswith("pr_auc") and "fails" in decision.reasons[0]
    assert decide(y, scores, scores, 0.5, GatePolicy(margin=0.0)).passed  # no margin: equal is enough


def test_a_better_ranking_that_flags_almost_nothing_at_the_threshold_fails_on_the_f1_guard():
    y, champion = scored(3, 2.0)
    rng = np.random.default_rng(4)
    sharper = 1 / (1 + np.exp(-(rng.normal(size=len(y)) + 3.5 * y - 3)))
    timid = sharper * 0.3  # the better ranking, but almost nothing reaches the threshold
    decision = decide(y, timid, champion, 0.5)
    assert not decision.passed
    assert any(r.startswith("f1") and "fails" in r for r in decision.reasons), decision.reasons


def test_without_a_champion_the_first_model_passes():
    y, scores = scored(5, 2.0)
    decision = decide(y, scores, None, 0.5)
    assert decision.passed and decision.champion == {} and "first model" in decision.reasons[0]


def test_a_champion_that_flags_everything_does_not_keep_a_better_model_out():
    y, _ = scored(6, 2.0)
    rng = np.random.default_rng(7)
    everything = np.where(rng.random(len(y)) < 0.97, 0.9, 0.1)  # flags 97%: high recall, no precision
    good = 1 / (1 + np.exp(-(rng.normal(size=len(y)) + 4.0 * y - 3)))
    decision = decide(y, good, everything, 0.5)
    assert decision.passed, decision.reasons
    assert decision.champion["recall"] > decision.challenger["recall"]  # what a recall-only guard would refuse


def noisier(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a challenger that ranks a little worse (the champion's logits plus noise), and the champion."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.05
    logits = rng.normal(size=n) + 2.0 * y
    champion = 1 / (1 + np.exp(-(logits - 3)))
    return y, 1 / (1 + np.exp(-(logits + rng.normal(scale=0.6, size=n) - 3))), champion


def roc_reason(decision) -> str:
    return next(r for r in decision.reasons if r.startswith("roc_auc"))


def test_a_guard_loss_the_holdout_cannot_tell_from_noise_passes_and_a_clear_one_fails():
    y, challenger, champion = noisier(800, 1)  # 40 frauds: the champion leads by 0.019, inside the noise
    small = decide(y, challenger, champion, 0.5)
    assert small.champion["roc_auc"] - small.challenger["roc_auc"] > 0.005  # what a fixed tolerance refused
    assert "passes" in roc_reason(small), small.reasons
    y, challenger, champion = noisier(20_000, 1)  # the same kind of loss, on 1,000 frauds: clear
    assert "fails" in roc_reason(decide(y, challenger, champion, 0.5)), roc_reason(decide(y, challenger, champion, 0.5))


def test_the_bootstrap_is_seeded_so_one_holdout_gets_one_decision():
    y, challenger, champion = noisier(1500, 2)
    assert decide(y, challenger, champion, 0.5).reasons == decide(y, challenger, champion, 0.5).reasons


def test_weighted_metrics_equal_the_plain_ones_on_the_rows_a_resample_repeats():
    y, challenger, _ = noisier(3000, 3)
    rng = np.random.default_rng(4)
    rows = rng.choice(len(y), len(y))
    weights = np.bincount(rows, minlength=len(y)).astype(np.float64)
    plain = scores_summary(y[rows], challenger[rows], 0.5)
    weighted = _Weighted(y, challenger, 0.5).metrics(weights)
    assert weighted["roc_auc"] == pytest.approx(plain["roc_auc"], abs=1e-12)
    assert weighted["f1"] == pytest.approx(plain["f1"], abs=1e-12)
