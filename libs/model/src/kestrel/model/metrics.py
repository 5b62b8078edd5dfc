"""Metrics for imbalanced labels: ROC-AUC, PR-AUC, log loss, precision and recall, and their CBPE estimates."""

from __future__ import annotations

import numpy as np


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    y = np.asarray(y, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: the mean of precision at the rank of each positive (tied scores form one step)."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    s, hits = np.asarray(score)[order], y[order]
    # Only the last row of a run of equal scores is a threshold.
    last = np.r_[s[1:] != s[:-1], True]
    tp, seen = np.cumsum(hits)[last], np.arange(1, len(s) + 1)[last]
    recall_step = np.diff(np.r_[0, tp]) / y.sum()
    return float((recall_step * tp / seen).sum())


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(y, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def precision_recall(y: np.ndarray, decision: np.ndarray) -> tuple[float, float]:
    """Precision and recall of the decisions (score >= threshold); nan where nothing was flagged or is positive."""
    y, decision = np.asarray(y, dtype=bool), np.asarray(decision, dtype=bool)
    tp = float((y & decision).sum())
    return _ratio(tp, float(decision.sum())), _ratio(tp, float(y.sum()))


def expected_precision_recall(p: np.ndarray, decision: np.ndarray) -> tuple[float, float]:
    """Precision and recall expected without labels from calibrated probabilities p = P(fraud | score) (CBPE).

    A flagged prediction is a true positive with probability p (else a false positive), an unflagged one a
    false negative with probability p: the expected confusion matrix, whose ratios estimate the metrics.
    """
    p, decision = np.asarray(p, dtype=np.float64), np.asarray(decision, dtype=bool)
    tp, fn = float(p[decision].sum()), float(p[~decision].sum())
    return _ratio(tp, float(decision.sum())), _ratio(tp, tp + fn)


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Metrics the model card, the champion/challenger comparison and the tests read."""
    return {
        "pr_auc": pr_auc(y, p),
        "roc_auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "positive_rate": float(np.mean(y)),
        "rows": float(len(y)),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(x)])
    avg = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(len(x))
    ranks[order] = avg[group]
    return ranks
