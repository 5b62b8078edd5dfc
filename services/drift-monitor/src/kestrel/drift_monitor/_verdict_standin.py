"""STAND-IN for kestrel.drift_monitor.verdict (helper drift-stats): the DRIFT-API.md surface, minimal; swap at merge.

Only what the service needs to run end to end: KS for every feature (scipy, one call per feature), PSI over the
reference bins as the effect, Benjamini-Hochberg or Bonferroni, minimum sizes. The real verdict.py replaces
this module whole; `kestrel.drift_monitor.assess` is the one importer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from kestrel.model import ReferenceStats


@dataclass(frozen=True)
class DriftPolicy:
    alpha: float = 0.05
    correction: str = "benjamini-hochberg"
    min_reference: int = 1000
    min_current: int = 500
    psi_floor: float = 0.02
    wasserstein_floor: float = 0.1
    js_floor: float = 0.05


@dataclass(frozen=True)
class Reference:
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    size: int
    sample: np.ndarray
    edges: tuple[np.ndarray, ...]

    @classmethod
    def from_stats(cls, stats: ReferenceStats, kinds: Sequence[str]) -> Reference:
        edges = tuple(b.edges for b in stats.features)
        return cls(stats.feature_names, tuple(kinds), len(stats.sample), np.asarray(stats.sample, np.float64), edges)


@dataclass(frozen=True)
class FeatureResult:
    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    p_corrected: float
    effect: str
    effect_size: float
    psi: float
    jensen_shannon: float
    wasserstein: float
    ks_statistic: float
    ks_pvalue: float
    bin_edges: tuple[float, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    drifted: bool

    def to_record(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class WindowVerdict:
    status: str
    features: tuple[FeatureResult, ...]
    drifted_features: tuple[str, ...]
    alpha: float
    correction: str
    reference_size: int
    current_size: int


def judge_window(reference: Reference, current: np.ndarray, policy: DriftPolicy) -> WindowVerdict:
    ref, edges = reference.sample, reference.edges
    raw = [_test(n, "numeric", ref[:, j], current[:, j], edges[j]) for j, n in enumerate(reference.names)]
    enough = reference.size >= policy.min_reference and len(current) >= policy.min_current
    results = _corrected(raw, policy, enough)
    drifted = tuple(r.name for r in sorted(results, key=lambda r: -r.effect_size) if r.drifted)
    status = "insufficient_data" if not enough else ("drift" if drifted else "ok")
    return WindowVerdict(status, results, drifted, policy.alpha, policy.correction, reference.size, len(current))


def judge_scores(reference_scores: np.ndarray, scores: np.ndarray, policy: DriftPolicy) -> FeatureResult:
    ref = np.asarray(reference_scores, np.float64)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1])) if len(ref) else np.array([])
    enough = len(ref) >= policy.min_reference and len(scores) >= policy.min_current
    return _corrected([_test("score", "score", ref, np.asarray(scores, np.float64), edges)], policy, enough)[0]


def _test(name: str, kind: str, ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> FeatureResult:
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return FeatureResult(name, kind, "ks", 0.0, 1.0, 1.0, "psi", 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, (), (), (), False)
    ks = stats.ks_2samp(ref, cur, method="asymp")
    p, q = _shares(ref, edges), _shares(cur, edges)
    psi = float(np.sum((q - p) * np.log(np.maximum(q, 1e-6) / np.maximum(p, 1e-6))))
    d, pv = float(ks.statistic), float(ks.pvalue)
    return FeatureResult(
        name, kind, "ks", d, pv, pv, "psi", psi, psi, 0.0, 0.0, d, pv, tuple(edges.tolist()), tuple(p), tuple(q), False
    )


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / max(len(x), 1)


def _corrected(raw: list[FeatureResult], policy: DriftPolicy, enough: bool) -> tuple[FeatureResult, ...]:
    p = np.array([r.p_value for r in raw])
    if policy.correction == "bonferroni":
        q = np.minimum(p * len(p), 1.0)
    else:
        order = np.argsort(p)
        scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
        q = np.empty_like(p)
        q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return tuple(
        replace(r, p_corrected=float(qi), drifted=bool(enough and qi < policy.alpha and r.psi > policy.psi_floor))
        for r, qi in zip(raw, q)
    )


def feature_kinds(feature_set: Any) -> tuple[str, ...]:
    return tuple("numeric" for _ in feature_set.names)
