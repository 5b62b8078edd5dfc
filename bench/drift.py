"""Drift rows: one window of 50 features, 10k current against 10k reference rows, every test and the correction,
against one scipy call per feature per test in the same run. `python -m bench.drift --power` prints the proofs'
false-alarm and power tables instead (docs/drift.md, Proof)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sp
from scipy.spatial.distance import jensenshannon

from bench.report import Row, attach_ratios, latency_ms, render
from kestrel.drift_monitor import proof
from kestrel.drift_monitor.stats import PSI_EPSILON
from kestrel.drift_monitor.synthetic import CardLike
from kestrel.drift_monitor.verdict import CATEGORICAL, DriftPolicy, Reference, feature_kinds, judge_window
from kestrel.featureset import load_feature_set
from kestrel.model.reference import compute_reference

GROUP = "drift"
FEATURES, ROWS = 50, 10_000


def window(seed: int = 0) -> tuple[Reference, np.ndarray]:
    """A reference of 10k card-like rows over 50 features (the card set's 28, then 22 of them again) and a window of
    10k rows with a few features shifted; the reference is precomputed, as each model version's is."""
    card = load_feature_set("card")
    rows, rng = CardLike(card), np.random.default_rng(seed)
    kinds = (feature_kinds(card) * 2)[:FEATURES]
    names = tuple(f"f{j:02d}" for j in range(FEATURES))

    def sample(shift: np.ndarray | None = None) -> np.ndarray:
        both = np.hstack([rows.rows(rng, ROWS, shift), rows.rows(rng, ROWS)])
        return both[:, :FEATURES]

    reference = Reference.from_sample(sample(), names, kinds)
    return reference, sample(rows.shift(0.3, 4))


def scipy_window(reference: Reference, current: np.ndarray, policy: DriftPolicy) -> np.ndarray:
    """The same tests, one scipy call per feature per test (PSI by numpy): KS and Wasserstein per numeric feature,
    chi-squared per categorical one, Jensen-Shannon and PSI on each feature's bins, then BH. Drifted flags."""
    ref = reference.sorted
    p, effect, floors = np.ones(FEATURES), np.zeros(FEATURES), np.zeros(FEATURES)
    numeric = {int(j): i for i, j in enumerate(reference.numeric)}
    for j, kind in enumerate(reference.kinds):
        if kind == CATEGORICAL:
            values = np.union1d(np.unique(ref[j]), np.unique(current[:, j]))
            sides = (np.unique(ref[j], return_counts=True), np.unique(current[:, j], return_counts=True))
            counts = np.array([_counts_at(values, *side) for side in sides])
            p[j] = sp.chi2_contingency(counts, correction=False).pvalue
            effect[j], floors[j] = jensenshannon(counts[0], counts[1], base=2), policy.js_floor
        else:
            edges = reference.edges[numeric[j]]
            edges = edges[np.isfinite(edges)]
            expected = reference.proportions[numeric[j], : len(edges) + 1]
            actual = np.bincount(np.searchsorted(edges, current[:, j], side="right"), minlength=len(edges) + 1)
            actual = actual / len(current)
            p[j] = sp.ks_2samp(ref[j], current[:, j], method="asymp").pvalue
            sp.wasserstein_distance(ref[j], current[:, j])
            jensenshannon(expected, actual, base=2)
            effect[j], floors[j] = _psi(expected, actual), policy.psi_floor
    return (sp.false_discovery_control(p, method="bh") < policy.alpha) & (effect > floors)


def _counts_at(values: np.ndarray, seen: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values))
    out[np.searchsorted(values, seen)] = counts
    return out


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.maximum(expected, PSI_EPSILON), np.maximum(actual, PSI_EPSILON)
    return float(np.sum(np.where((expected > 0) | (actual > 0), (a - e) * np.log(a / e), 0.0)))


def _timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def rows(quick: bool) -> list[Row]:
    reference, current = window()
    policy = DriftPolicy()
    ours = judge_window(reference, current, policy)
    theirs = scipy_window(reference, current, policy)
    if [f.drifted for f in ours.features] != theirs.tolist():
        raise AssertionError("the vectorised verdict and the per-feature scipy calls disagree")
    repeats = 5 if quick else 30
    baseline = "scipy, one call per feature per test"
    out = []
    for name, fn in (
        (baseline, lambda: scipy_window(reference, current, policy)),
        ("drift verdict, vectorised", lambda: judge_window(reference, current, policy)),
    ):
        samples = _timed(fn, repeats)
        p50, p99 = latency_ms(samples)
        out.append(
            Row(
                GROUP,
                f"{name} (50 features, 10k vs 10k rows)",
                throughput=1 / float(np.mean(samples)),
                p50_ms=p50,
                p99_ms=p99,
                notes=f"windows/s; {repeats} runs; KS, chi2, PSI, JS, W1, BH",
            )
        )
    out[1].baseline = out[0].name
    return out


async def run(bootstrap: str, tmp: Path, quick: bool) -> list[Row]:
    return rows(quick)


def print_proof(windows: int, size: int) -> None:
    card = load_feature_set("card")
    generator, rng = CardLike(card), np.random.default_rng(7)
    sample = generator.rows(rng, 50_000)
    stats = compute_reference(sample, rng.random(len(sample)), generator.names)
    reference, policy = Reference.from_stats(stats, feature_kinds(card)), DriftPolicy()
    found = proof.stationary(reference, generator, policy, 4 * windows, size, seed=11)
    for label, rate in (("drift", found.drift), ("any corrected p < alpha", found.significant)):
        low, high = rate.interval()
        print(f"stationary windows, {label}: {rate.hits}/{rate.windows} ({rate.share:.1%}, 95% {low:.3f}-{high:.3f})")
    print(proof.markdown(proof.power_table(reference, generator, policy, windows, size), size))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--power", action="store_true", help="print the false-alarm and power tables")
    parser.add_argument("--windows", type=int, default=100, help="windows per power cell (4x that stationary)")
    parser.add_argument("--rows", type=int, default=proof.WINDOW_ROWS, help="rows per window")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.power:
        print_proof(args.windows, args.rows)
    else:
        table = rows(args.quick)
        attach_ratios(table)
        print(render(table))
