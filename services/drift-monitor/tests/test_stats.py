"""Every drift statistic equals scipy's own on the same data (within 1e-9), vectorised or not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp
from scipy.spatial.distance import jensenshannon

from kestrel.drift_monitor import stats
from kestrel.drift_monitor.synthetic import CardLike
from kestrel.drift_monitor.verdict import DriftPolicy, Reference, judge_window
from kestrel.model.reference import shares

TOL = 1e-9


def close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= TOL * max(1.0, abs(theirs))


@pytest.fixture(scope="module")
def window(card_like: CardLike, card_reference: Reference) -> tuple[np.ndarray, np.ndarray]:
    """The reference's sample and a drifted window (a few columns moved) of card-like rows."""
    rng = np.random.default_rng(3)
    reference = card_reference.sorted.T.copy()
    return reference, card_like.rows(rng, 3000, card_like.shift(0.3, 8, seed=1))


def test_ks_and_wasserstein_equal_scipy_per_feature(window: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = window
    d, w1 = stats.ecdf_distances(stats.sort_columns(ref), stats.sort_columns(cur))
    p = stats.ks_pvalues(d, len(ref), len(cur))
    for j in range(ref.shape[1]):
        ks = sp.ks_2samp(ref[:, j], cur[:, j], method="asymp")
        assert close(d[j], ks.statistic) and close(p[j], ks.pvalue), j
        assert close(w1[j], sp.wasserstein_distance(ref[:, j], cur[:, j])), j


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=2, max_size=40),
    st.lists(st.integers(-3, 3), min_size=2, max_size=40),
)
def test_ks_and_wasserstein_with_ties_equal_scipy(a: list[int], b: list[int]) -> None:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d, w1 = stats.ecdf_distances(np.sort(x)[None, :], np.sort(y)[None, :])
    ks = sp.ks_2samp(x, y, method="asymp")
    assert close(d[0], ks.statistic)
    assert close(stats.ks_pvalues(d, len(x), len(y))[0], ks.pvalue)
    assert close(w1[0], sp.wasserstein_distance(x, y))


def test_window_results_equal_scipy(window: tuple[np.ndarray, np.ndarray], card_reference: Reference) -> None:
    """What judge_window reports: KS, Wasserstein over the reference std, JS over the reference's bins."""
    ref, cur = window
    verdict = judge_window(card_reference, cur, DriftPolicy())
    for j, f in enumerate(verdict.features):
        ks = sp.ks_2samp(ref[:, j], cur[:, j], method="asymp")
        assert close(f.ks_statistic, ks.statistic) and close(f.ks_pvalue, ks.pvalue), f.name
        assert close(f.wasserstein, sp.wasserstein_distance(ref[:, j], cur[:, j]) / np.std(ref[:, j])), f.name
        if f.kind == "numeric":
            edges = np.asarray(f.bin_edges)
            assert np.allclose(f.current_shares, shares(cur[:, j], edges), rtol=0, atol=TOL)
            assert close(f.jensen_shannon, jensenshannon(f.reference_shares, f.current_shares, base=2)), f.name


def test_chi_squared_equals_scipy_chisquare_and_contingency() -> None:
    rng = np.random.default_rng(5)
    ref = rng.multinomial(5000, [0.5, 0.3, 0.15, 0.05, 0.0], size=6).astype(np.float64)
    cur = rng.multinomial(800, [0.45, 0.3, 0.15, 0.05, 0.05], size=6).astype(np.float64)
    cur[2, 3] = 0  # a category the window lacks
    statistic, p = stats.chi2_homogeneity(ref, cur)
    for j in range(len(ref)):
        table = np.vstack([ref[j], cur[j]])
        table = table[:, table.sum(axis=0) > 0]
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        theirs = sp.chisquare(table.ravel(), expected.ravel(), ddof=table.shape[1])
        assert close(statistic[j], theirs.statistic) and close(p[j], theirs.pvalue)
        contingency = sp.chi2_contingency(table, correction=False)
        assert close(statistic[j], contingency.statistic) and close(p[j], contingency.pvalue)


def test_categorical_window_uses_the_homogeneity_test(card_reference: Reference, card_like: CardLike) -> None:
    """A value the reference never saw (hour 24) is counted in its own bin, and the test stays scipy's."""
    cur = card_like.rows(np.random.default_rng(9), 1000)
    hour = card_reference.names.index("hour_of_day")
    cur[:7, hour] = 24
    result = judge_window(card_reference, cur, DriftPolicy()).features[hour]
    ref_col = card_reference.sorted[hour]
    values = np.unique(np.r_[ref_col, cur[:, hour]])
    table = np.array([[np.sum(ref_col == v) for v in values], [np.sum(cur[:, hour] == v) for v in values]])
    contingency = sp.chi2_contingency(table, correction=False)
    assert result.test == "chi2" and len(result.bin_edges) == 24
    assert close(result.statistic, contingency.statistic) and close(result.p_value, contingency.pvalue)
    unseen_share = 1 - sum(result.current_shares)
    assert close(unseen_share, 7 / 1000)


def test_jensen_shannon_and_psi_per_row() -> None:
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.ones(10), size=5), rng.dirichlet(np.ones(10), size=5)
    q[0, 3] = 0.0
    ours = stats.jensen_shannon(p, q)
    for j in range(5):
        assert close(ours[j], jensenshannon(p[j], q[j], base=2))
        e, a = np.maximum(p[j], stats.PSI_EPSILON), np.maximum(q[j], stats.PSI_EPSILON)
        assert close(stats.psi(p, q)[j], float(np.sum((a - e) * np.log(a / e))))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=60))
def test_benjamini_hochberg_equals_scipy(ps: list[float]) -> None:
    p = np.asarray(ps)
    assert np.allclose(stats.benjamini_hochberg(p), sp.false_discovery_control(p, method="bh"), rtol=0, atol=TOL)


def test_bonferroni() -> None:
    assert stats.bonferroni(np.array([0.01, 0.2, 0.5])).tolist() == pytest.approx([0.03, 0.6, 1.0])
