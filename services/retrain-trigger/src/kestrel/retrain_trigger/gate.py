"""The gate a challenger passes before it may be tried: better than the champion by a margin on PR-AUC, on the
same holdout, without clearly losing on the guard metrics (ROC-AUC, F1 at the threshold). Pure: scores and labels
in, a decision with its reasons out.

"Clearly": a guard fails when the champion leads by more than the tolerance with `confidence`, judged by a paired,
stratified bootstrap of the holdout. A fixed tolerance alone is noise on the holdouts a retrain sees: with 40
frauds in it, ROC-AUC moves by about 0.03 between resamples (seen in the loop test: a challenger with PR-AUC 0.54
against the champion's 0.12 was refused for a ROC-AUC 0.021 below, well inside that noise)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from kestrel.model import metrics


@dataclass(frozen=True)
class GatePolicy:
    margin: float = 0.005
    """The challenger's PR-AUC must be at least the champion's plus this."""
    roc_auc_tolerance: float = 0.005
    """Guard: the challenger's ROC-AUC may be at most this much below the champion's."""
    f1_tolerance: float = 0.02
    """Guard: its F1 at the threshold may be at most this much below the champion's. F1, not precision and
    recall one by one: a champion that flags almost everything has a recall no useful model keeps (seen on
    the new-country wave: champion precision 0.09 recall 0.76, challenger 0.98 and 0.60)."""
    confidence: float = 0.95
    """A guard fails only when the champion's lead exceeds its tolerance in this share of bootstrap resamples."""
    resamples: int = 400


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: tuple[str, ...]
    """Why it passed or failed, one line per rule, with the numbers."""
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] = field(default_factory=dict)


def scores_summary(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """PR-AUC, ROC-AUC, and precision, recall and F1 at the threshold: what the gate compares and reports."""
    precision, recall = metrics.precision_recall(y, scores >= threshold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "pr_auc": metrics.pr_auc(y, scores),
        "roc_auc": metrics.roc_auc(y, scores),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def decide(
    y: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    threshold: float,
    policy: GatePolicy = GatePolicy(),
) -> GateDecision:
    """Both models scored on the same holdout rows. Without a champion the challenger passes (a first model)."""
    y = np.asarray(y).astype(bool)
    new = scores_summary(y, np.asarray(challenger_scores), threshold)
    if champion_scores is None:
        return GateDecision(True, ("no champion: the first model passes",), new)
    old = scores_summary(y, np.asarray(champion_scores), threshold)
    floor = old["pr_auc"] + policy.margin
    checks = [(new["pr_auc"] >= floor, "pr_auc", f"at least champion {old['pr_auc']:.4f} + {policy.margin}")]
    leads = bootstrap_leads(y, np.asarray(challenger_scores), np.asarray(champion_scores), threshold, policy)
    for name, tolerance in (("roc_auc", policy.roc_auc_tolerance), ("f1", policy.f1_tolerance)):
        bound = float(np.nanquantile(leads[name], 1 - policy.confidence))
        rule = f"at most {tolerance} below, at {policy.confidence:.0%} confidence (champion's lead >= {bound:+.4f})"
        checks.append((not bound > tolerance, name, rule))
    reasons = tuple(
        f"{name} {new[name]:.4f} {'passes' if ok else 'fails'}: {rule} (champion {old[name]:.4f})"
        for ok, name, rule in checks
    )
    return GateDecision(all(ok for ok, *_ in checks), reasons, new, old)


def bootstrap_leads(
    y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, threshold: float, policy: GatePolicy
) -> dict[str, np.ndarray]:
    """The champion's lead (champion minus challenger) in ROC-AUC and F1 on each resample of the holdout: rows
    drawn with replacement, frauds and the rest apart (each resample keeps the holdout's fraud count), both
    models scored on the same rows. A resample is a vector of row weights, so each model is sorted once.
    Seeded: the same holdout gives the same decision."""
    models = [_Weighted(y, scores, threshold) for scores in (champion, challenger)]
    leads: dict[str, list[float]] = {"roc_auc": [], "f1": []}
    for drawn in stratified_resamples(y, policy.resamples):
        weights = np.bincount(drawn, minlength=y.size).astype(np.float64)
        old, new = (m.metrics(weights) for m in models)
        for name in leads:
            leads[name].append(old[name] - new[name])
    return {name: np.asarray(values) for name, values in leads.items()}


def stratified_resamples(y: np.ndarray, resamples: int) -> Iterator[np.ndarray]:
    """Row indices of each bootstrap resample: drawn with replacement, frauds and the rest apart, so each
    resample keeps the fraud count. Seeded: the same rows give the same resamples."""
    rng = np.random.default_rng(0)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    for _ in range(resamples):
        yield np.concatenate([rng.choice(positives, positives.size), rng.choice(negatives, negatives.size)])


class _Weighted:
    """One model's ROC-AUC and F1 at the threshold under row weights (bootstrap multiplicities)."""

    def __init__(self, y: np.ndarray, scores: np.ndarray, threshold: float) -> None:
        levels, self.level = np.unique(scores, return_inverse=True)  # tied scores share a level
        self.levels, self.y, self.flagged = levels.size, y.astype(np.float64), scores >= threshold

    def metrics(self, w: np.ndarray) -> dict[str, float]:
        pos = np.bincount(self.level, weights=w * self.y, minlength=self.levels)
        neg = np.bincount(self.level, weights=w * (1 - self.y), minlength=self.levels)
        below = np.cumsum(neg) - neg  # negatives ranked strictly lower; ties count half
        roc_auc = float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))
        tp, flagged = float((w * self.y)[self.flagged].sum()), float(w[self.flagged].sum())
        f1 = 2 * tp / (flagged + pos.sum()) if flagged + pos.sum() > 0 else 0.0
        return {"roc_auc": roc_auc, "f1": f1}
