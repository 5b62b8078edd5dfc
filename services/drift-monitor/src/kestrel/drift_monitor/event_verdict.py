"""Drift of the raw event columns, judged from counts: a window's events against the training events'. No I/O.

The columns and their counting are kestrel.model.events'. Categorical columns (channel, country, merchant category,
currency) get the feature verdict's test and effect (chi-squared, Jensen-Shannon); amount, counted on a fine log
grid, gets KS over that grid and PSI over the reference's deciles of it. One correction across the columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from kestrel.drift_monitor import stats
from kestrel.drift_monitor.verdict import CATEGORICAL, NUMERIC, DriftPolicy, FeatureResult, WindowVerdict
from kestrel.model.events import AMOUNT, EventReference, bucket_low
from kestrel.model.events import CATEGORICAL as CATEGORY_COLUMNS
from kestrel.model.reference import BINS

WindowCounts = Mapping[str, Mapping[str, int]]
"""Column -> value -> events of the window (kestrel.model.events.add)."""


def judge_events(reference: EventReference, window: WindowCounts, policy: DriftPolicy) -> WindowVerdict:
    """Every monitored column of one window against the reference, corrected across the columns."""
    rows = sum(window.get(CATEGORY_COLUMNS[0], {}).values())
    enough = rows >= policy.min_current and reference.rows >= policy.min_reference
    results = [*_categorical(reference, window), _amount(reference, window, policy)] if rows else []
    p_corrected = stats.CORRECTIONS[policy.correction](np.array([r.p_value for r in results]))
    judged = [_decide(r, float(q), enough, policy) for r, q in zip(results, p_corrected)]
    drifted = sorted((f for f in judged if f.drifted), key=lambda f: -f.effect_size / policy.floor(f.effect))
    status = "insufficient_data" if not enough else "drift" if drifted else "ok"
    return WindowVerdict(
        status,
        tuple(judged),
        tuple(f.name for f in drifted),
        policy.alpha,
        policy.correction,
        reference.rows,
        rows,
    )


def _decide(result: FeatureResult, p_corrected: float, enough: bool, policy: DriftPolicy) -> FeatureResult:
    drifted = enough and p_corrected < policy.alpha and result.effect_size > policy.floor(result.effect)
    return replace(result, p_corrected=p_corrected, drifted=drifted)


def _categorical(reference: EventReference, window: WindowCounts) -> list[FeatureResult]:
    """All categorical columns at once: counts over each column's reference values, padded with zeros, and one
    last bin for the values the reference never saw."""
    values = [sorted(reference.counts[c]) for c in CATEGORY_COLUMNS]
    ref = np.zeros((len(values), max(map(len, values)) + 1))
    cur = np.zeros_like(ref)
    for i, (column, known) in enumerate(zip(CATEGORY_COLUMNS, values)):
        seen = window.get(column, {})
        ref[i, : len(known)] = [reference.counts[column][v] for v in known]
        cur[i, : len(known)] = [seen.get(v, 0) for v in known]
        cur[i, -1] = sum(seen.values()) - cur[i, : len(known)].sum()
    statistic, p = stats.chi2_homogeneity(ref, cur)
    expected, actual = stats.shares(ref), stats.shares(cur)
    psi, js = stats.psi(expected, actual), stats.jensen_shannon(expected, actual)
    return [
        _result(
            column,
            CATEGORICAL,
            ("chi2", float(statistic[i]), float(p[i])),
            ("jensen_shannon", float(js[i])),
            (float(psi[i]), float(js[i]), 0.0, 0.0, 1.0),
            _category_bins(known, expected[i], actual[i]),
        )
        for i, (column, known) in enumerate(zip(CATEGORY_COLUMNS, values))
    ]


def _category_bins(
    known: Sequence[str], expected: np.ndarray, actual: np.ndarray
) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...]]:
    """The reference's values, then `other` (values it never saw) when the window has any."""
    kept = [*range(len(known)), *([-1] if actual[-1] > 0 else [])]
    names = (*known, "other")[: len(kept)]
    return tuple(names), tuple(float(expected[i]) for i in kept), tuple(float(actual[i]) for i in kept)


def _amount(reference: EventReference, window: WindowCounts, policy: DriftPolicy) -> FeatureResult:
    """KS and Wasserstein over the amount grid's buckets (values at their lower ends), PSI and JS over the
    reference's deciles of it."""
    seen = window.get(AMOUNT, {})
    buckets = sorted({int(b) for b in reference.counts[AMOUNT]} | {int(b) for b in seen})
    ref = np.array([[reference.counts[AMOUNT].get(str(b), 0) for b in buckets]], dtype=np.float64)
    cur = np.array([[seen.get(str(b), 0) for b in buckets]], dtype=np.float64)
    at = np.array([[bucket_low(b) for b in buckets]])
    d, w1 = stats.binned_distances(ref, cur, at)
    p = stats.ks_pvalues(d, int(ref.sum()), int(cur.sum()))
    mean = np.average(at[0], weights=ref[0]) if ref.sum() else 0.0
    std = float(np.sqrt(np.average((at[0] - mean) ** 2, weights=ref[0]))) if ref.sum() else 0.0
    wasserstein = float(w1[0]) / std if std > 0 else 0.0
    group = _deciles(ref[0])
    ref_bins, cur_bins = _grouped(ref, group), _grouped(cur, group)
    expected, actual = stats.shares(ref_bins), stats.shares(cur_bins)
    psi, js = float(stats.psi(expected, actual)[0]), float(stats.jensen_shannon(expected, actual)[0])
    effect = ("wasserstein", wasserstein) if policy.numeric_effect == "wasserstein" else ("psi", psi)
    firsts = np.flatnonzero(np.diff(group)) + 1
    edges = tuple(float(at[0, i]) for i in firsts)
    return _result(
        AMOUNT,
        NUMERIC,
        ("ks", float(d[0]), float(p[0])),
        effect,
        (psi, js, wasserstein, float(d[0]), float(p[0])),
        (edges, tuple(map(float, expected[0])), tuple(map(float, actual[0]))),
    )


def _deciles(ref_counts: np.ndarray) -> np.ndarray:
    """Each bucket's decile of the reference: by the reference's share below the bucket, so a bucket heavier than
    a tenth makes a bin of its own (as duplicate quantile edges merge in kestrel.model.reference.Binning)."""
    below = np.concatenate([[0.0], np.cumsum(ref_counts)[:-1]]) / max(ref_counts.sum(), 1.0)
    raw = np.minimum((below * BINS + 1e-9).astype(np.int64), BINS - 1)
    return np.unique(raw, return_inverse=True)[1]


def _grouped(counts: np.ndarray, group: np.ndarray) -> np.ndarray:
    return np.array([np.bincount(group, weights=row, minlength=group.max() + 1) for row in counts])


def _result(
    name: str,
    kind: str,
    test: tuple[str, float, float],
    effect: tuple[str, float],
    also: tuple[float, float, float, float, float],
    bins: tuple[tuple[str, ...] | tuple[float, ...], tuple[float, ...], tuple[float, ...]],
) -> FeatureResult:
    """`also`: PSI, Jensen-Shannon, Wasserstein, KS D and p (categorical columns, which have no order: no KS,
    no Wasserstein). Categorical bins name their values in `categories`, their positions in `bin_edges`."""
    labels, reference_shares, current_shares = bins
    categorical = kind == CATEGORICAL
    return FeatureResult(
        name=name,
        kind=kind,
        test=test[0],
        statistic=test[1],
        p_value=test[2],
        p_corrected=test[2],
        effect=effect[0],
        effect_size=effect[1],
        psi=also[0],
        jensen_shannon=also[1],
        wasserstein=also[2],
        ks_statistic=also[3],
        ks_pvalue=also[4],
        bin_edges=tuple(float(i) for i in range(len(labels))) if categorical else tuple(map(float, labels)),
        reference_shares=reference_shares,
        current_shares=current_shares,
        drifted=False,
        categories=tuple(map(str, labels)) if categorical else (),
    )
