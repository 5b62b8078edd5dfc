"""Proof of the verdict on card-like rows: false alarms held to alpha, power on small shifts, effect floors, minimum
samples, the test each kind of feature gets, and the report record through Avro and back."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import numpy as np
import pytest

from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.drift_monitor import proof
from kestrel.drift_monitor.assess import Assessment
from kestrel.drift_monitor.record import drift_report
from kestrel.drift_monitor.synthetic import CardLike
from kestrel.drift_monitor.verdict import CATEGORICAL, DriftPolicy, Reference, feature_kinds, judge_scores, judge_window
from kestrel.drift_monitor.windows import Close
from kestrel.featureset import FeatureSet

SCHEMA = fastavro.parse_schema(json.loads((Path(__file__).parents[3] / "schemas" / "drift_report.avsc").read_text()))
POLICY = DriftPolicy()


def test_stationary_windows_raise_drift_at_most_at_alpha(card_reference: Reference, card_like: CardLike) -> None:
    """200 windows of the default size from the reference's own distribution."""
    found = proof.stationary(card_reference, card_like, POLICY, windows=200, size=proof.WINDOW_ROWS, seed=11)
    # Drift needs significance and an effect above its floor: even the exact upper 95% bound is below alpha.
    assert found.drift.interval()[1] <= POLICY.alpha, found
    # Significance alone (BH across 28 features) is calibrated: its rate is consistent with at most alpha.
    assert found.significant.interval()[0] <= POLICY.alpha, found


@pytest.fixture(scope="module")
def power(card_reference: Reference, card_like: CardLike) -> dict[tuple[float, int], proof.Power]:
    table = proof.power_table(card_reference, card_like, POLICY, windows=30)
    return {(p.sds, p.shifted): p for p in table}


def test_power_grows_with_the_shift_and_the_features_shifted(power: dict[tuple[float, int], proof.Power]) -> None:
    for k in proof.SHIFTED:
        rates = [power[s, k].detected.share for s in proof.SHIFTS]
        assert rates == sorted(rates), (k, rates)
    for s in proof.SHIFTS:
        rates = [power[s, k].detected.share for k in proof.SHIFTED]
        assert rates == sorted(rates), (s, rates)


def test_small_shifts_are_caught_and_named(power: dict[tuple[float, int], proof.Power]) -> None:
    assert power[0.5, 1].detected.share >= 0.95 and power[0.5, 1].named >= 0.95
    assert power[0.2, 1].detected.share >= 0.8
    assert all(p.detected.share >= 0.95 for (s, k), p in power.items() if k >= 5)
    # A tenth of a sd is the effect floor: about half the single shifts are over it.
    assert 0.25 <= power[0.1, 1].detected.share <= 0.75
    assert all(p.wrongly_named <= 0.05 for p in power.values())


def test_a_negligible_shift_on_100k_rows_is_significant_but_not_drift(card_like: CardLike) -> None:
    rng = np.random.default_rng(21)
    reference = Reference.from_sample(card_like.rows(rng, 100_000), card_like.names, ("numeric",) * 28)
    shift = np.where(np.isin(card_like.names, ["amount", "amount_zscore_24h"]), 0.05, 0.0)
    verdict = judge_window(reference, card_like.rows(rng, 100_000, shift), POLICY)
    moved = [f for f in verdict.features if f.name in ("amount", "amount_zscore_24h")]
    assert all(f.p_corrected < 1e-6 and f.effect_size < POLICY.psi_floor for f in moved), moved
    assert verdict.status == "ok" and verdict.drifted_features == ()


def test_below_the_minimum_samples_a_window_is_insufficient_data_never_drift(
    card_reference: Reference, card_like: CardLike
) -> None:
    rng = np.random.default_rng(4)
    shift = np.ones(28)
    small = judge_window(card_reference, card_like.rows(rng, POLICY.min_current - 1, shift), POLICY)
    assert small.status == "insufficient_data" and small.drifted_features == ()
    assert not any(f.drifted for f in small.features) and min(f.p_corrected for f in small.features) < 1e-9
    assert judge_window(card_reference, card_like.rows(rng, POLICY.min_current, shift), POLICY).status == "drift"
    thin = Reference.from_sample(card_like.rows(rng, POLICY.min_reference - 1), card_like.names, card_reference.kinds)
    assert judge_window(thin, card_like.rows(rng, 5000, shift), POLICY).status == "insufficient_data"
    assert not judge_scores(rng.random(5000), rng.random(POLICY.min_current - 1) ** 3, POLICY).drifted


@pytest.mark.parametrize("numeric_effect", ["psi", "wasserstein"])
def test_each_kind_of_feature_gets_its_test_and_effect(
    card: FeatureSet, card_reference: Reference, card_like: CardLike, numeric_effect: str
) -> None:
    policy = DriftPolicy(numeric_effect=numeric_effect)
    verdict = judge_window(card_reference, card_like.rows(np.random.default_rng(6), 2000), policy)
    for spec, kind, result in zip(card.features, feature_kinds(card), verdict.features):
        if spec.dtype == "bool" or spec.aggregation == "hour_of_day":
            assert (kind, result.test, result.effect) == (CATEGORICAL, "chi2", "jensen_shannon"), spec.name
            assert len(result.bin_edges) == (2 if spec.dtype == "bool" else 24), spec.name
        else:
            assert (kind, result.test, result.effect) == ("numeric", "ks", numeric_effect), spec.name
            assert result.statistic == result.ks_statistic and result.p_value == result.ks_pvalue, spec.name


def test_the_report_of_a_card_window_round_trips_through_avro(card_reference: Reference, card_like: CardLike) -> None:
    rng = np.random.default_rng(8)
    verdict = judge_window(card_reference, card_like.rows(rng, 3000, card_like.shift(0.5, 3)), POLICY)
    score = judge_scores(rng.random(5000), rng.random(3000), POLICY)
    close = Close("fraud", "3", 0, 3_600_000, 3000, 2, {0: 3000}, 3_700_000)
    report = drift_report(close, Assessment(verdict, score), "card.v1", 3_800_000, log_complete=True)
    assert fastavro.validate(report, SCHEMA, strict=True)
    serde = serde_for_topic(FileSchemaRegistry(), "kestrel.drift-reports.v1", "drift_report")
    assert serde.deserialize(serde.serialize(report)) == report
    assert report["status"] == "drift" and len(report["drifted_features"]) == 3
    assert {m["kind"] for m in report["metrics"]} == {"numeric", "categorical", "score"}


def test_a_surge_of_flagged_scores_drifts_once_the_threshold_is_a_bin_edge() -> None:
    """0.6% of reference scores are at or above the threshold, 3% of the window's: all inside the top decile."""
    rng = np.random.default_rng(12)

    def scores(n: int, flagged: float) -> np.ndarray:
        out = rng.beta(1, 30, n)
        out[: int(n * flagged)] = rng.uniform(0.5, 1.0, int(n * flagged))
        return out

    reference, window = scores(10_000, 0.006), scores(20_000, 0.03)
    deciles_only = judge_scores(reference, window, POLICY)
    assert deciles_only.p_corrected < 1e-3 and deciles_only.effect_size < POLICY.psi_floor
    found = judge_scores(reference, window, POLICY, threshold=0.5)
    assert found.drifted and found.effect_size > 3 * POLICY.psi_floor and 0.5 in found.bin_edges
    assert found.current_shares[-1] == pytest.approx(0.03)
    assert not judge_scores(reference, scores(20_000, 0.006), POLICY, threshold=0.5).drifted
