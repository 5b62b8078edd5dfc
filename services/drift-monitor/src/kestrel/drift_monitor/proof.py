"""False alarms and power of the window verdict on card-like rows: what the proof tests assert and bench prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp

from kestrel.drift_monitor.synthetic import CardLike
from kestrel.drift_monitor.verdict import DriftPolicy, Reference, judge_window

WINDOW_ROWS = 10_000
"""Rows per window in the proofs: the size of a model version's reference sample (kestrel.model.reference)."""
SHIFTS = (0.1, 0.2, 0.5)
"""Standard deviations of the latent normal each shifted feature moves by (see CardLike)."""
SHIFTED = (1, 5, 20)
"""How many of the 28 card features are shifted."""


@dataclass(frozen=True)
class Rate:
    """A share of windows with its exact (Clopper-Pearson) two-sided 95% interval."""

    hits: int
    windows: int

    @property
    def share(self) -> float:
        return self.hits / self.windows

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        ci = sp.binomtest(self.hits, self.windows).proportion_ci(confidence, method="exact")
        return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Stationary:
    """Stationary windows: how many were called drift, and how many had any corrected p-value below alpha."""

    drift: Rate
    significant: Rate


@dataclass(frozen=True)
class Power:
    """Windows with `shifted` features moved by `sds`: how often the window is drift, and who was named."""

    sds: float
    shifted: int
    detected: Rate
    named: float
    """Mean share of the shifted features the window names as drifted."""
    wrongly_named: float
    """Mean number of unshifted features named per window."""


def stationary(
    reference: Reference, rows: CardLike, policy: DriftPolicy, windows: int, size: int, seed: int
) -> Stationary:
    """`windows` fresh windows from the reference's own generator, each judged against the reference."""
    rng = np.random.default_rng(seed)
    drift = significant = 0
    for _ in range(windows):
        verdict = judge_window(reference, rows.rows(rng, size), policy)
        drift += verdict.status == "drift"
        significant += any(f.p_corrected < policy.alpha for f in verdict.features)
    return Stationary(Rate(drift, windows), Rate(significant, windows))


def power(
    reference: Reference, rows: CardLike, policy: DriftPolicy, sds: float, shifted: int, windows: int, size: int
) -> Power:
    """Each window shifts its own random choice of `shifted` features (the seed is the window's index)."""
    rng = np.random.default_rng(int(sds * 1000) + shifted)
    detected, named, wrong = 0, 0.0, 0
    for k in range(windows):
        shift = rows.shift(sds, shifted, seed=k)
        verdict = judge_window(reference, rows.rows(rng, size, shift), policy)
        moved = {n for n, s in zip(rows.names, shift) if s}
        detected += verdict.status == "drift"
        named += len(moved & set(verdict.drifted_features)) / shifted
        wrong += len(set(verdict.drifted_features) - moved)
    return Power(sds, shifted, Rate(detected, windows), named / windows, wrong / windows)


def power_table(
    reference: Reference,
    rows: CardLike,
    policy: DriftPolicy,
    windows: int,
    size: int = WINDOW_ROWS,
    shifts: Sequence[float] = SHIFTS,
    shifted: Sequence[int] = SHIFTED,
) -> list[Power]:
    return [power(reference, rows, policy, s, k, windows, size) for s in shifts for k in shifted]


def markdown(table: Sequence[Power], size: int) -> str:
    """The power table as docs/drift.md shows it."""
    lines = [
        f"| shift (sd) | features shifted (of 28) | windows drift ({size:,} rows) | 95% interval "
        "| shifted features named | other features named per window |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in table:
        low, high = p.detected.interval()
        lines.append(
            f"| {p.sds:g} | {p.shifted} | {p.detected.hits}/{p.detected.windows} ({p.detected.share:.0%}) "
            f"| {low:.2f}-{high:.2f} | {p.named:.0%} | {p.wrongly_named:.2f} |"
        )
    return "\n".join(lines)
