"""Metrics against brute-force definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.model.metrics import expected_precision_recall, pr_auc, precision_recall, roc_auc


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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.booleans(), st.floats(0, 1)), max_size=40))
def test_precision_recall_and_their_expectations_count_the_confusion_matrix(rows):
    y = np.array([r[0] for r in rows], dtype=int)
    flag = np.array([r[1] for r in rows], dtype=bool)
    p = np.array([r[2] for r in rows], dtype=float)
    tp = sum(1 for yi, fi in zip(y, flag) if yi and fi)
    expected_tp = sum(pi for pi, fi in zip(p, flag) if fi)
    expected_fn = sum(pi for pi, fi in zip(p, flag) if not fi)
    precision, recall = precision_recall(y, flag)
    est_precision, est_recall = expected_precision_recall(p, flag)
    assert _same(precision, tp / flag.sum() if flag.sum() else None)
    assert _same(recall, tp / y.sum() if y.sum() else None)
    assert _same(est_precision, expected_tp / flag.sum() if flag.sum() else None)
    positives = expected_tp + expected_fn
    assert _same(est_recall, expected_tp / positives if positives > 0 else None)


def test_expected_precision_recall_equal_the_measured_ones_when_p_is_the_label():
    y = np.array([1, 0, 1, 1, 0, 0])
    flag = np.array([True, True, False, True, False, True])
    assert expected_precision_recall(y.astype(float), flag) == precision_recall(y, flag) == (0.5, 2 / 3)


def _same(value: float, expected: float | None) -> bool:
    return np.isnan(value) if expected is None else bool(np.isclose(value, expected))
