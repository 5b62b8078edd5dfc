"""The gate a challenger passes before it may be tried: better than the champion by a margin on PR-AUC, on the
same holdout, without losing on the guard metrics (ROC-AUC, F1 at the threshold). Pure: scores and labels in,
a decision with its reasons out."""

from __future__ import annotations

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
    floors = {
        "pr_auc": (old["pr_auc"] + policy.margin, f"at least champion {old['pr_auc']:.4f} + {policy.margin}"),
        "roc_auc": (old["roc_auc"] - policy.roc_auc_tolerance, f"at most {policy.roc_auc_tolerance} below"),
        "f1": (old["f1"] - policy.f1_tolerance, f"at most {policy.f1_tolerance} below"),
    }
    checks = [(new[name] >= floor, name, rule) for name, (floor, rule) in floors.items()]
    reasons = tuple(
        f"{name} {new[name]:.4f} {'passes' if ok else 'fails'}: {rule} (champion {old[name]:.4f})"
        for ok, name, rule in checks
    )
    return GateDecision(all(ok for ok, *_ in checks), reasons, new, old)
