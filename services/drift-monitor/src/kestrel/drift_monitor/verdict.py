"""Drift policy and the window verdict: significance and effect size together, corrected across features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kestrel.common.errors import KestrelError
from kestrel.drift_monitor import stats
from kestrel.featureset import FeatureSet
from kestrel.model.reference import Binning, ReferenceStats, shares

NUMERIC, CATEGORICAL, SCORE = "numeric", "categorical", "score"
BOUNDED_AGGREGATIONS = frozenset({"hour_of_day"})
"""Integer aggregations with a small fixed domain (24 hours): tested as categories. Counts and distinct counts are
unbounded, so they stay numeric (KS with ties is conservative, so their false alarms stay controlled)."""


class DriftPolicyError(KestrelError, ValueError):
    """A drift policy or reference is malformed."""


@dataclass(frozen=True)
class DriftPolicy:
    """When a feature drifts: corrected p-value below alpha AND its effect size above the effect's floor."""

    alpha: float = 0.05
    correction: str = "benjamini-hochberg"
    """Across the window's features: benjamini-hochberg (false-discovery rate) or bonferroni (family-wise)."""
    min_reference: int = 1000
    """Fewer reference rows: every window is insufficient_data."""
    min_current: int = 500
    """Fewer window rows: insufficient_data (asymptotic KS and chi-squared need samples of hundreds)."""
    psi_floor: float = 0.01
    """Numeric effect floor: about a tenth of a standard deviation (a normal mean moving 0.1 sd has PSI ~0.01;
    0.01 sd has ~1e-4, at any sample size)."""
    wasserstein_floor: float = 0.1
    """Wasserstein-1 over the reference std: a mean moving by 0.1 sd (used when numeric_effect is wasserstein)."""
    js_floor: float = 0.04
    """Categorical effect floor (JS distance, base 2), the same chi-squared divergence as PSI 0.01: a bool's rate
    moving from 10% to 13%."""
    numeric_effect: str = "psi"
    """Effect size numeric features must pass: psi, or wasserstein (robust to bins, blind to tails' shape)."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise DriftPolicyError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.correction not in stats.CORRECTIONS:
            raise DriftPolicyError(f"correction must be one of {', '.join(stats.CORRECTIONS)}")
        if self.numeric_effect not in ("psi", "wasserstein"):
            raise DriftPolicyError("numeric_effect must be psi or wasserstein")
        if min(self.min_reference, self.min_current) < 2:
            raise DriftPolicyError("minimum sample sizes must be at least 2")

    def floor(self, effect: str) -> float:
        return {"psi": self.psi_floor, "wasserstein": self.wasserstein_floor, "jensen_shannon": self.js_floor}[effect]


def feature_kinds(feature_set: FeatureSet) -> tuple[str, ...]:
    """categorical for bool features and bounded small-integer ones (hour_of_day); numeric for the rest."""
    return tuple(
        CATEGORICAL if f.dtype == "bool" or f.aggregation in BOUNDED_AGGREGATIONS else NUMERIC
        for f in feature_set.features
    )


def _pad(rows: Sequence[np.ndarray], fill: float) -> np.ndarray:
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), fill)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@dataclass(frozen=True, eq=False)
class Reference:
    """One model version's reference, precomputed once: sorted sample columns, bins and category counts."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    size: int
    sorted: np.ndarray
    """(F, size) sample values, each feature sorted: one side of every KS and Wasserstein merge."""
    std: np.ndarray
    numeric: np.ndarray
    edges: np.ndarray
    """(numeric, bins - 1) interior decile edges, padded with +inf."""
    proportions: np.ndarray
    categorical: np.ndarray
    categories: np.ndarray
    """(categorical, K) values seen in the sample, padded with NaN."""
    category_counts: np.ndarray
    """(categorical, K + 1) reference rows per category; the last column (unseen values) is 0."""

    @classmethod
    def from_stats(cls, stats: ReferenceStats, kinds: Sequence[str]) -> Reference:
        return cls.from_sample(stats.sample, stats.feature_names, kinds, stats.features)

    @classmethod
    def from_sample(
        cls,
        sample: np.ndarray,
        names: Sequence[str],
        kinds: Sequence[str],
        binnings: Sequence[Binning] | None = None,
    ) -> Reference:
        """From raw reference rows (n, F); bins fitted on the sample unless given (fitted on all training rows)."""
        x = np.asarray(sample, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(names) or len(kinds) != len(names):
            raise DriftPolicyError(f"reference of shape {x.shape} does not match {len(names)} names and kinds")
        if set(kinds) - {NUMERIC, CATEGORICAL}:
            raise DriftPolicyError(f"unknown feature kinds {sorted(set(kinds) - {NUMERIC, CATEGORICAL})}")
        numeric = np.flatnonzero(np.asarray(kinds) == NUMERIC)
        categorical = np.flatnonzero(np.asarray(kinds) == CATEGORICAL)
        bins = [binnings[int(j)] if binnings else Binning.fit(x[:, j]) for j in numeric]
        categories = _pad([np.unique(x[:, j]) for j in categorical], np.nan)
        return cls(
            tuple(names),
            tuple(kinds),
            len(x),
            stats.sort_columns(x),
            x.std(axis=0),
            numeric,
            _pad([b.edges for b in bins], np.inf),
            _pad([b.proportions for b in bins], 0.0),
            categorical,
            categories,
            stats.category_counts(x[:, categorical], categories),
        )


@dataclass(frozen=True)
class FeatureResult:
    """One feature's (or the score's) drift in one window; to_record() is its FeatureDrift Avro record."""

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
    categories: tuple[str, ...] = ()
    """Names of the bins of a categorical column whose values are strings (event columns; bin_edges then holds
    their positions); empty for numeric values."""

    def to_record(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in ("name", "kind", "test", "effect", "drifted")},
            "categories": list(self.categories),
            **{k: float(getattr(self, k)) for k in _FLOATS},
            **{k: [float(v) for v in getattr(self, k)] for k in ("bin_edges", "reference_shares", "current_shares")},
        }


_FLOATS = (
    "statistic",
    "p_value",
    "p_corrected",
    "effect_size",
    "psi",
    "jensen_shannon",
    "wasserstein",
    "ks_statistic",
    "ks_pvalue",
)


@dataclass(frozen=True)
class WindowVerdict:
    status: str
    """ok, drift, or insufficient_data (below min_current or min_reference: never drift)."""
    features: tuple[FeatureResult, ...]
    """One per feature in definition order; empty only for an empty window."""
    drifted_features: tuple[str, ...]
    """Largest effect (relative to its floor) first."""
    alpha: float
    correction: str
    reference_size: int
    current_size: int


def judge_window(reference: Reference, current: np.ndarray, policy: DriftPolicy) -> WindowVerdict:
    """Test every feature of a window (m, F), columns in reference.names order, against the reference."""
    x = np.asarray(current, dtype=np.float64).reshape(-1, len(reference.names))
    enough = len(x) >= policy.min_current and reference.size >= policy.min_reference
    features = _test(reference, x, policy, enough) if len(x) else ()
    drifted = sorted((f for f in features if f.drifted), key=lambda f: -f.effect_size / policy.floor(f.effect))
    status = "insufficient_data" if not enough else "drift" if drifted else "ok"
    return WindowVerdict(
        status,
        features,
        tuple(f.name for f in drifted),
        policy.alpha,
        policy.correction,
        reference.size,
        len(x),
    )


def judge_scores(
    reference_scores: np.ndarray, scores: np.ndarray, policy: DriftPolicy, threshold: float | None = None
) -> FeatureResult:
    """The score distribution against the reference's (KS and PSI over the reference's score deciles, plus the
    threshold as an edge); one test, so no correction. Below the minimum samples the result is never drifted.

    Flagged predictions are rare (under 1% for fraud), so they sit inside the top decile: without the threshold's
    edge a fraud surge that multiplies them moves PSI by less than its floor."""
    sample = np.reshape(np.asarray(reference_scores, dtype=np.float64), (-1, 1))
    deciles = Binning.fit(sample[:, 0])
    edges = deciles.edges if threshold is None else np.unique(np.r_[deciles.edges, threshold])
    binning = Binning(edges, shares(sample[:, 0], edges))
    reference = Reference.from_sample(sample, (SCORE,), (NUMERIC,), (binning,))
    verdict = judge_window(reference, np.reshape(scores, (-1, 1)), policy)
    if not verdict.features:
        return _untested(SCORE, SCORE, policy.numeric_effect)
    return replace(verdict.features[0], kind=SCORE)


def _untested(name: str, kind: str, effect: str) -> FeatureResult:
    """Nothing to test (an empty window): no statistic, p-values of 1, no shares."""
    return FeatureResult(
        name=name,
        kind=kind,
        test="ks",
        statistic=0.0,
        p_value=1.0,
        p_corrected=1.0,
        effect=effect,
        effect_size=0.0,
        psi=0.0,
        jensen_shannon=0.0,
        wasserstein=0.0,
        ks_statistic=0.0,
        ks_pvalue=1.0,
        bin_edges=(),
        reference_shares=(),
        current_shares=(),
        drifted=False,
    )


def _test(reference: Reference, x: np.ndarray, policy: DriftPolicy, enough: bool) -> tuple[FeatureResult, ...]:
    n, m = reference.size, len(x)
    cur_sorted = stats.sort_columns(x)
    d, w1 = stats.ecdf_distances(reference.sorted, cur_sorted)
    ks_p = stats.ks_pvalues(d, n, m)
    wasserstein = np.where(reference.std > 0, w1 / np.where(reference.std > 0, reference.std, 1.0), 0.0)
    cols = _Columns.of(reference, x, cur_sorted, d, ks_p)
    p_corrected = stats.CORRECTIONS[policy.correction](cols.p)
    effects = np.where(np.asarray(reference.kinds) == CATEGORICAL, "jensen_shannon", policy.numeric_effect)
    size = np.choose((effects == "wasserstein") + 2 * (effects == "jensen_shannon"), [cols.psi, wasserstein, cols.js])
    floors = np.array([policy.floor(e) for e in effects])
    drifted = enough & (p_corrected < policy.alpha) & (size > floors)
    return tuple(
        FeatureResult(
            name=name,
            kind=kind,
            test=cols.test[j],
            statistic=float(cols.statistic[j]),
            p_value=float(cols.p[j]),
            p_corrected=float(p_corrected[j]),
            effect=str(effects[j]),
            effect_size=float(size[j]),
            psi=float(cols.psi[j]),
            jensen_shannon=float(cols.js[j]),
            wasserstein=float(wasserstein[j]),
            ks_statistic=float(d[j]),
            ks_pvalue=float(ks_p[j]),
            bin_edges=cols.bins[j][0],
            reference_shares=cols.bins[j][1],
            current_shares=cols.bins[j][2],
            drifted=bool(drifted[j]),
        )
        for j, (name, kind) in enumerate(zip(reference.names, reference.kinds))
    )


@dataclass
class _Columns:
    """Per-feature test, statistic, p-value, PSI, JS and shares, numeric and categorical filled in place."""

    test: list[str]
    statistic: np.ndarray
    p: np.ndarray
    psi: np.ndarray
    js: np.ndarray
    bins: list[tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]]

    @classmethod
    def of(cls, ref: Reference, x: np.ndarray, cur_sorted: np.ndarray, d: np.ndarray, ks_p: np.ndarray) -> _Columns:
        f = len(ref.names)
        cols = cls(["ks"] * f, d.copy(), ks_p.copy(), np.zeros(f), np.zeros(f), [((), (), ())] * f)
        cols._numeric(ref, cur_sorted[ref.numeric])
        cols._categorical(ref, x)
        return cols

    def _numeric(self, ref: Reference, cur_sorted: np.ndarray) -> None:
        current = stats.shares(stats.bin_counts(cur_sorted, ref.edges))
        self._effects(ref.numeric, ref.proportions, current)
        for i, j in enumerate(ref.numeric):
            edges = ref.edges[i][np.isfinite(ref.edges[i])]
            bins = len(edges) + 1
            self.bins[j] = (tuple(edges), tuple(ref.proportions[i, :bins]), tuple(current[i, :bins]))

    def _categorical(self, ref: Reference, x: np.ndarray) -> None:
        counts = stats.category_counts(x[:, ref.categorical], ref.categories)
        statistic, p = stats.chi2_homogeneity(ref.category_counts, counts)
        self.statistic[ref.categorical], self.p[ref.categorical] = statistic, p
        expected, current = stats.shares(ref.category_counts), stats.shares(counts)
        self._effects(ref.categorical, expected, current)
        for i, j in enumerate(ref.categorical):
            values = ref.categories[i][~np.isnan(ref.categories[i])]
            k = len(values)
            self.test[j] = "chi2"
            self.bins[j] = (tuple(values), tuple(expected[i, :k]), tuple(current[i, :k]))

    def _effects(self, columns: np.ndarray, expected: np.ndarray, current: np.ndarray) -> None:
        if len(columns):
            self.psi[columns] = stats.psi(expected, current)
            self.js[columns] = stats.jensen_shannon(expected, current)
