"""Drift statistics over all features of a window at once: numpy arrays in, arrays out, no I/O."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

PSI_EPSILON = 1e-4
"""Share given to an empty bin before PSI's log ratio (the usual practice: an empty bin on one side would make PSI
infinite). It only enters PSI; Jensen-Shannon and chi-squared need no pseudo-count."""


def sort_columns(x: np.ndarray) -> np.ndarray:
    """(rows, F) -> (F, rows) float64, each feature's values sorted: the layout `ecdf_distances` merges."""
    return np.sort(np.asarray(x, dtype=np.float64).T, axis=1)


def ecdf_distances(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic D and Wasserstein-1 distance per feature, from both samples' sorted columns (F, n), (F, m).

    One stable merge of the two sorted runs per row (timsort merges them in linear time) gives both empirical
    CDFs at every value: D is their largest gap where the value changes (ties counted on the right, as
    scipy's searchsorted does), W1 the area between them."""
    n, m = ref_sorted.shape[1], cur_sorted.shape[1]
    both = np.concatenate([ref_sorted, cur_sorted], axis=1)
    order = np.argsort(both, axis=1, kind="stable")
    step = np.diff(np.take_along_axis(both, order, axis=1), axis=1)
    # n*m times the CDF gap, |from_ref/n - from_cur/m|, in exact integers (and one pass less than floats)
    gap = np.cumsum(order[:, :-1] < n, axis=1, dtype=np.int64) * (n + m)
    gap -= np.arange(1, n + m, dtype=np.int64) * n
    np.abs(gap, out=gap)
    d = np.max(gap, axis=1, where=step > 0, initial=0) / (n * m)
    return d, np.einsum("ij,ij->i", gap, step) / (n * m)


def binned_distances(
    ref_counts: np.ndarray, cur_counts: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic D and Wasserstein-1 distance per row from counts over ordered bins (F, B), each bin's values
    taken at its position (F, B; increasing): the two samples' empirical CDFs compared at the bins' ends. On
    values that are the bins' positions this is `ecdf_distances` exactly; on binned data it is that of the
    values rounded down to their bin."""
    gap = np.abs(np.cumsum(shares(ref_counts), axis=1) - np.cumsum(shares(cur_counts), axis=1))
    return gap.max(axis=1, initial=0.0), np.einsum("ij,ij->i", gap[:, :-1], np.diff(positions, axis=1))


def ks_pvalues(d: np.ndarray, n: int, m: int) -> np.ndarray:
    """Asymptotic two-sided p-values of KS statistics, as scipy's ks_2samp(method="asymp"): one kstwo.sf call."""
    en = np.round(n * m / (n + m))
    return np.clip(stats.kstwo.sf(d, en), 0.0, 1.0)


def bin_counts(cur_sorted: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Values per bin of each feature's interior edges (F, B-1; padded with +inf), from the window's sorted
    columns (F, m): (F, B) counts. Bin k holds edges[k-1] <= x < edges[k], the rule of
    kestrel.model.reference.Binning."""
    found = [np.searchsorted(col, e, side="left") for col, e in zip(cur_sorted, edges)]
    below = np.array(found, dtype=np.int64).reshape(edges.shape)
    # A handful of edges per feature: one searchsorted each is microseconds, a (m, F, B) comparison is not.
    bounds = np.column_stack([np.zeros(len(edges), dtype=np.int64), below])
    return np.diff(np.column_stack([bounds, np.full(len(edges), cur_sorted.shape[1])]), axis=1)


def category_counts(x: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Rows of x (m, F) equal to each feature's categories (F, K; padded with NaN), plus one last column with
    the rows whose value is none of them (categories the reference never saw): (F, K + 1) counts."""
    known = (x[:, :, None] == categories[None, :, :]).sum(axis=0)
    return np.concatenate([known, (x.shape[0] - known.sum(axis=1))[:, None]], axis=1)


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts (F, B) -> shares per row (an all-zero row stays zero)."""
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total > 0, total, 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Population stability index per row of shares (F, B); bins empty on both sides add nothing."""
    e, a = np.maximum(expected, PSI_EPSILON), np.maximum(actual, PSI_EPSILON)
    used = (expected > 0) | (actual > 0)
    return np.where(used, (a - e) * np.log(a / e), 0.0).sum(axis=1)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance in base 2 per row (F, B), as scipy.spatial.distance.jensenshannon(p, q, base=2)."""
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    mid = (p + q) / 2
    divergence = special.rel_entr(p, mid).sum(axis=1) + special.rel_entr(q, mid).sum(axis=1)
    return np.sqrt(np.maximum(divergence / np.log(2.0), 0.0) / 2)


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample chi-squared test per row of counts (F, K): do both samples share one distribution?

    Expected counts come from the pooled shares, so a category only one side has (unseen in the reference, or
    absent from the window) keeps a positive expectation and bins empty on both sides drop out (with their degree
    of freedom). Equal to scipy's chisquare over the 2 x K table with ddof=K, and to chi2_contingency."""
    pooled = ref_counts + cur_counts
    n = ref_counts.sum(axis=1, keepdims=True)
    m = cur_counts.sum(axis=1, keepdims=True)
    used = pooled > 0
    safe = np.where(used, pooled, 1.0)
    terms = (ref_counts - n * safe / (n + m)) ** 2 / (n * safe / (n + m))
    terms += (cur_counts - m * safe / (n + m)) ** 2 / (m * safe / (n + m))
    statistic = np.where(used, terms, 0.0).sum(axis=1)
    dof = used.sum(axis=1) - 1
    p = np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    return statistic, np.clip(p, 0.0, 1.0)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (as scipy.stats.false_discovery_control(p, method="bh"))."""
    k = len(p)
    if k == 0:
        return p.copy()
    order = np.argsort(p)
    scaled = p[order] * k / np.arange(1, k + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(k)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def bonferroni(p: np.ndarray) -> np.ndarray:
    """Bonferroni adjusted p-values: each times the number of tests, capped at 1."""
    return np.minimum(p * len(p), 1.0)


CORRECTIONS = {"benjamini-hochberg": benjamini_hochberg, "bonferroni": bonferroni}
