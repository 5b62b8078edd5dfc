"""Ranking metrics against brute-force definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.model.metrics import pr_auc, roc_auc


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=60))
def test_roc_auc_is_the_pairwise_win_rate_with_ties_half(pairs):
    y, s = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)
    if y.min() == y.max():
        assert np.isnan(roc_auc(y, s))
        return
    assert np.isclose(roc_auc(y, s), _pairwise_auc(y, s))


def test_pr_auc_is_mean_precision_at_each_positive():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert np.isclose(pr_auc(y, s), (1 / 1 + 2 / 3 + 3 / 6) / 3)


def test_pr_auc_of_a_perfect_and_of_a_constant_ranking():
    y = np.array([0, 1, 0, 0, 1])
    assert pr_auc(y, y.astype(float)) == 1.0
    assert np.isclose(pr_auc(y, np.zeros(5)), y.mean())
