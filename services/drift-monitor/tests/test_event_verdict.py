"""The events subject's verdict from counts: statistics equal scipy's on the same data, and the verdict's rules."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from scipy import stats as sp
from scipy.spatial.distance import jensenshannon

from kestrel.drift_monitor import proof
from kestrel.drift_monitor.event_verdict import judge_events
from kestrel.drift_monitor.verdict import DriftPolicy
from kestrel.model.events import (
    AMOUNT,
    CATEGORICAL,
    Counts,
    EventReference,
    amount_bucket,
    bucket_low,
    event_reference,
)
from kestrel.model.events import add as count
from kestrel.model.events import keys as event_keys

TOL = 1e-9
CHANNELS = {"pos": 0.45, "contactless": 0.3, "ecommerce": 0.2, "atm": 0.05}
COUNTRIES = {"DE": 0.5, "FR": 0.2, "ES": 0.15, "GB": 0.1, "IT": 0.05}


def payments(rng: np.random.Generator, n: int, channels: Mapping[str, float] = CHANNELS, scale: float = 1.0) -> list:
    """Independent payments: no clustering, so the chi-squared and KS p-values are exact in distribution."""
    country = rng.choice(list(COUNTRIES), n, p=list(COUNTRIES.values()))
    return [
        {
            "channel": str(c),
            "country": str(k),
            "merchant_category": str(m),
            "currency": "GBP" if k == "GB" else "EUR",
            "amount": float(a),
        }
        for c, k, m, a in zip(
            rng.choice(list(channels), n, p=list(channels.values())),
            country,
            rng.choice(["5411", "5812", "5999", "4111"], n),
            np.round(rng.lognormal(3.0, 1.0, n) * scale, 2),
        )
    ]


def counts_of(events: list) -> Counts:
    out: Counts = {}
    for e in events:
        count(out, event_keys(e))
    return out


def close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= TOL * max(1.0, abs(theirs))


def test_every_statistic_equals_scipys_on_the_same_data() -> None:
    rng = np.random.default_rng(1)
    ref_events, cur_events = payments(rng, 5000), payments(rng, 3000, {**CHANNELS, "atm": 0.1, "pos": 0.4}, 1.1)
    cur_events.append({**cur_events[0], "country": "JP", "currency": "JPY"})  # values the reference never saw
    verdict = judge_events(event_reference(ref_events), counts_of(cur_events), DriftPolicy())
    found = {f.name: f for f in verdict.features}
    assert tuple(found) == (*CATEGORICAL, AMOUNT)
    for column in CATEGORICAL:
        values = sorted({e[column] for e in ref_events})
        table = np.array([[sum(e[column] == v for e in side) for v in values] for side in (ref_events, cur_events)])
        table = np.column_stack([table, [0, len(cur_events) - table[1].sum()]])
        table = table[:, table.sum(axis=0) > 0]
        chi2, p, _, _ = sp.chi2_contingency(table, correction=False)
        f = found[column]
        assert f.test == "chi2" and close(f.statistic, chi2) and close(f.p_value, p)
        assert close(f.jensen_shannon, jensenshannon(table[0], table[1], base=2))
        assert f.categories[: len(values)] == tuple(values)
    assert found["country"].categories[-1] == "other" and found["country"].current_shares[-1] > 0
    at = [np.array([bucket_low(amount_bucket(e["amount"])) for e in side]) for side in (ref_events, cur_events)]
    ks = sp.ks_2samp(*at, method="asymp")
    amount = found[AMOUNT]
    assert amount.test == "ks" and close(amount.ks_statistic, ks.statistic) and close(amount.p_value, ks.pvalue)
    assert close(amount.wasserstein, sp.wasserstein_distance(*at) / at[0].std())
    corrected = sp.false_discovery_control([f.p_value for f in verdict.features], method="bh")
    assert all(close(f.p_corrected, min(q, 1.0)) for f, q in zip(verdict.features, corrected))


def test_amount_deciles_split_the_reference_in_tenths_and_psi_reads_them() -> None:
    rng = np.random.default_rng(2)
    ref = event_reference(payments(rng, 20_000))
    amount = judge_events(ref, counts_of(payments(rng, 5000)), DriftPolicy()).features[-1]
    assert len(amount.bin_edges) == 9 and list(amount.bin_edges) == sorted(amount.bin_edges)
    assert np.allclose(amount.reference_shares, 0.1, atol=0.01)
    assert amount.effect == "psi" and amount.effect_size == amount.psi < DriftPolicy().psi_floor


def test_stationary_windows_are_ok_and_a_channel_shift_is_drift_naming_channel() -> None:
    rng, policy = np.random.default_rng(3), DriftPolicy()
    ref = event_reference(payments(rng, 30_000))
    stationary = [judge_events(ref, counts_of(payments(rng, 10_000)), policy) for _ in range(20)]
    assert [v.status for v in stationary] == ["ok"] * 20
    online = {"pos": 0.25, "contactless": 0.2, "ecommerce": 0.5, "atm": 0.05}
    shifted = judge_events(ref, counts_of(payments(rng, 10_000, online)), policy)
    assert shifted.status == "drift" and shifted.drifted_features == ("channel",)


def test_below_the_minimum_samples_a_window_is_insufficient_data_and_never_drift() -> None:
    rng, policy = np.random.default_rng(4), DriftPolicy()
    ref = event_reference(payments(rng, 5000))
    few = judge_events(ref, counts_of(payments(rng, 499, {"ecommerce": 1.0})), policy)
    assert few.status == "insufficient_data" and not any(f.drifted for f in few.features)
    assert judge_events(ref, counts_of(payments(rng, 500, {"ecommerce": 1.0})), policy).status == "drift"
    small = event_reference(payments(rng, 999))
    assert judge_events(small, counts_of(payments(rng, 5000)), policy).status == "insufficient_data"
    empty = judge_events(ref, {}, policy)
    assert empty.status == "insufficient_data" and empty.features == () and empty.current_size == 0


@pytest.mark.parametrize("effect", ["psi", "wasserstein"])
def test_an_amount_shift_is_named_by_the_numeric_effect_in_force(effect: str) -> None:
    rng, policy = np.random.default_rng(5), DriftPolicy(numeric_effect=effect)
    ref = event_reference(payments(rng, 20_000))
    verdict = judge_events(ref, counts_of(payments(rng, 5000, scale=1.5)), policy)
    assert verdict.drifted_features == ("amount",) and verdict.features[-1].effect == effect


def stationary_counts(rng: np.random.Generator, n: int) -> Counts:
    """n independent events from one fixed distribution, counted without building them one by one."""
    counts: Counts = {}
    for column, shares in (("channel", CHANNELS), ("country", COUNTRIES), ("currency", {"EUR": 0.9, "GBP": 0.1})):
        counts[column] = dict(zip(shares, map(int, rng.multinomial(n, list(shares.values())))))
    counts["merchant_category"] = dict(zip(("5411", "5812", "5999", "4111"), map(int, rng.multinomial(n, [0.25] * 4))))
    buckets = np.floor(np.log10(np.round(rng.lognormal(3.0, 1.0, n), 2)) * 200).astype(int)
    counts[AMOUNT] = {str(b): int(k) for b, k in zip(*np.unique(buckets, return_counts=True))}
    return counts


def test_stationary_windows_raise_drift_at_most_at_alpha() -> None:
    """200 windows of 10,000 events from the reference's own distribution, as test_proof does for features."""
    rng, policy = np.random.default_rng(11), DriftPolicy()
    ref = EventReference(50_000, stationary_counts(rng, 50_000))
    verdicts = [judge_events(ref, stationary_counts(rng, 10_000), policy) for _ in range(200)]
    drift = proof.Rate(sum(v.status == "drift" for v in verdicts), 200)
    significant = proof.Rate(sum(any(f.p_corrected < policy.alpha for f in v.features) for v in verdicts), 200)
    assert drift.hits == 0 and drift.interval()[1] <= policy.alpha, drift
    assert significant.interval()[0] <= policy.alpha <= significant.interval()[1], significant
