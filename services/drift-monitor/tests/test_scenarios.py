"""The simulator's drift scenarios through the offline feature computer, the checked-in model and the verdict, and
their raw events through the events subject's verdict: daily windows, as the service would report them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kestrel.drift_monitor.assess import Assessment
from kestrel.drift_monitor.event_verdict import judge_events
from kestrel.drift_monitor.record import drift_report, events_report
from kestrel.drift_monitor.verdict import DriftPolicy, Reference, feature_kinds, judge_scores, judge_window
from kestrel.drift_monitor.windows import Close
from kestrel.featureset import FeatureSet, load_feature_set, offline
from kestrel.model import ModelArtifact, events, load
from kestrel.model.reference import compute_reference
from kestrel.simulator.generator import Generator, GeneratorConfig
from kestrel.simulator.population import natural_rate

MODEL = Path(__file__).resolve().parents[3] / "infra" / "triton" / "models" / "kestrel_fraud" / "1"
THRESHOLD = 0.5
"""The inference service's default: the score's bins split there, as the report sink's do."""
DAY_MS = 86_400_000
START = 1_749_945_600_000
"""Midnight UTC: windows are whole days, so hour_of_day is compared over full days."""
CARDS, SEED = 10_000, 3
"""The simulator's default population, about 34,000 payments a day. Card features are clustered (a card's 24 h
aggregates repeat in each of its payments), so a day carries less evidence than its rows: with 3,000 cards one
stationary day in 24 (4 seeds) drifted, with 1,000 cards one of four."""
REFERENCE_DAYS, BEFORE, ONSET = (1, 2), (3, 4), 5
"""Day 0 warms the cards' histories up; days 1-2 are the training-time reference; the scenario starts on day 5."""
POLICY = DriftPolicy()

SIGNATURE = {
    "amount-shift": ({"amount", "amount_mean_1h", "amount_max_1h"}, ("amount",)),
    "merchant-mix": ({"merchant_new_24h", "mcc_distinct_24h"}, ("merchant_", "mcc_", "amount")),
    "new-country-wave": ({"country_distinct_24h", "country_new_24h"}, ("country_", "merchant_", "mcc_", "amount")),
    "fraud-surge": ({"score"}, ("country_", "amount")),
}
"""Per scenario: features the first drifted window must name, and the prefixes of every feature it may name (or the
score, which follows its inputs). Volume and timing features (hour_of_day, txn_count_*, seconds_since_prev) and
channel_new_24h never move."""
EVENT_SIGNATURE = {
    "amount-shift": ({"amount"}, {"amount"}),
    "merchant-mix": ({"merchant_category"}, {"merchant_category", "channel", "amount"}),
    "new-country-wave": ({"country", "currency"}, {"country", "currency", "amount", "merchant_category"}),
    "channel-shift": ({"channel"}, {"channel"}),
    "fraud-surge": (set(), set(events.COLUMNS)),
}
"""The same for the events subject (the raw event columns). Online merchants come with the merchant mix, foreign
currencies and their amounts with the country wave; a fraud surge moves whatever the fraud patterns use, and the
score is what must see it."""


@pytest.fixture(scope="module")
def card() -> FeatureSet:
    return load_feature_set("card")


@pytest.fixture(scope="module")
def model() -> ModelArtifact:
    return load(MODEL)


def _traffic(card: FeatureSet, scenario: str, days: int) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Feature rows and their day, for `days` simulated days with the scenario from day ONSET (no ramp), and the
    events themselves."""
    rate = natural_rate(CARDS)
    config = GeneratorConfig(cards=CARDS, seed=SEED, run_id="d", scenario=scenario, drift_at_s=ONSET * 86_400)
    generator, rng, generated = Generator(config, START), np.random.default_rng(SEED), []
    for end in range(START + 600_000, START + days * DAY_MS + 1, 600_000):
        generated += generator.step(int(rng.poisson(rate * 600)), end).events
    vectors = offline.compute(generated, card)
    kept = [i for i, v in enumerate(vectors) if v is not None]
    X = np.array([vectors[i] for i in kept])
    return X, (np.array([generated[i]["event_time"] for i in kept]) - START) // DAY_MS, generated


Reports = dict[int, dict[str, Any]]


def _reports(card: FeatureSet, model: ModelArtifact, scenario: str, days: int = 7) -> tuple[Reports, Reports]:
    """The DriftReports of each day after the reference's, against days 1-2: subject predictions, subject events."""
    X, day, generated = _traffic(card, scenario, days)
    scores = model.predict(X)
    training = np.isin(day, REFERENCE_DAYS)
    names = tuple(f.name for f in card.features)
    reference = Reference.from_stats(compute_reference(X[training], scores[training], names), feature_kinds(card))
    event_day = (np.array([e["event_time"] for e in generated]) - START) // DAY_MS
    event_ref = events.event_reference(e for e, d in zip(generated, event_day) if d in REFERENCE_DAYS)
    reports, on_events = {}, {}
    for d in range(BEFORE[0], days):
        score = judge_scores(scores[training], scores[day == d], POLICY, THRESHOLD)
        found = Assessment(judge_window(reference, X[day == d], POLICY), score)
        close = Close("fraud", "1", START + d * DAY_MS, START + (d + 1) * DAY_MS, int(np.sum(day == d)), 0, {}, 0)
        reports[d] = drift_report(close, found, "card.v1", 0, log_complete=True)
        counts: events.Counts = {}
        for e in (e for e, ed in zip(generated, event_day) if ed == d):
            events.add(counts, events.keys(e))
        on_events[d] = events_report(close, judge_events(event_ref, counts, POLICY), "fraud", "1", 0)
    return reports, on_events


def test_stationary_traffic_gets_no_drift_report(card: FeatureSet, model: ModelArtifact) -> None:
    reports, on_events = _reports(card, model, "none", days=9)
    assert [r["status"] for r in reports.values()] == ["ok"] * 6, {d: r["drifted_features"] for d, r in reports.items()}
    assert all(r["window_size"] > 30_000 for r in reports.values())
    assert [r["status"] for r in on_events.values()] == ["ok"] * 6, {d: r["metrics"] for d, r in on_events.items()}
    assert all(r["window_size"] > 30_000 for r in on_events.values())


@pytest.mark.parametrize("scenario", sorted(SIGNATURE))
def test_a_scenario_is_reported_within_two_windows_naming_its_features(
    card: FeatureSet, model: ModelArtifact, scenario: str
) -> None:
    reports, on_events = _reports(card, model, scenario)
    assert [reports[d]["status"] for d in BEFORE] == ["ok", "ok"]
    after = [reports[d] for d in (ONSET, ONSET + 1)]
    drifted = [r for r in after if r["status"] == "drift"]
    assert drifted, [r["status"] for r in after]
    must, allowed = SIGNATURE[scenario]
    assert must <= set(drifted[0]["drifted_features"]), drifted[0]["drifted_features"]
    named = {n for r in drifted for n in r["drifted_features"]}
    assert all(n.startswith((*allowed, "score")) for n in named), sorted(named)
    _check_events(on_events, scenario)


def test_a_channel_shift_is_reported_on_the_events_subject_naming_channel(
    card: FeatureSet, model: ModelArtifact
) -> None:
    """Channel is no feature of the card set: only channel_new_24h sees it, and it moves less than day-to-day noise,
    so the predictions subject rightly reports nothing (the scores and performance do not move either). The events
    subject watches the channel itself."""
    reports, on_events = _reports(card, model, "channel-shift")
    assert all(r["status"] == "ok" for r in reports.values())
    channel = [m for m in reports[ONSET + 1]["metrics"] if m["name"] == "channel_new_24h"][0]
    assert channel["effect_size"] < POLICY.js_floor and channel["p_corrected"] > POLICY.alpha
    _check_events(on_events, "channel-shift")
    assert on_events[ONSET]["drifted_features"] == ["channel"]


def _check_events(on_events: Reports, scenario: str) -> None:
    """The events subject: ok before the onset, drift within two windows naming the scenario's columns only."""
    assert [on_events[d]["status"] for d in BEFORE] == ["ok", "ok"]
    drifted = [on_events[d] for d in (ONSET, ONSET + 1) if on_events[d]["status"] == "drift"]
    assert drifted, [on_events[d]["status"] for d in (ONSET, ONSET + 1)]
    must, allowed = EVENT_SIGNATURE[scenario]
    assert must <= set(drifted[0]["drifted_features"]), drifted[0]["drifted_features"]
    assert {n for r in drifted for n in r["drifted_features"]} <= allowed
