"""Unit tests of the pure generator: determinism, fraud share, labels, drift, schema validity."""

from __future__ import annotations

import math
from dataclasses import replace

import fastavro
import numpy as np
import pytest

from kestrel.common.avro import load_schema
from kestrel.common.validation import validate_event
from kestrel.simulator import catalog
from kestrel.simulator.generator import PATTERN_ATTRIBUTE, Batch, Generator, GeneratorConfig
from kestrel.simulator.invalid import MUTATIONS

START_MS = 1_760_000_000_000


def simulate(config: GeneratorConfig, steps: int, batch: int = 500, events_per_s: float = 200.0) -> list[Batch]:
    """Steps a generator through simulated time at `events_per_s`, then drains its labels into a last batch."""
    generator = Generator(config, START_MS)
    t, out = float(START_MS), []
    for _ in range(steps):
        t += batch * 1000 / events_per_s
        out.append(generator.step(batch, int(t)))
    out.append(Batch(events=[], labels=generator.drain_labels()))
    return out


@pytest.fixture
def config() -> GeneratorConfig:
    return GeneratorConfig(cards=2_000, seed=7, run_id="t", merchants_per_country=100)


def events_of(batches):
    return [e for b in batches for e in b.events]


def labels_of(batches):
    return [label for b in batches for label in b.labels]


def test_same_seed_same_traffic(config):
    first, second = simulate(config, 20), simulate(config, 20)
    assert events_of(first) == events_of(second)
    assert labels_of(first) == labels_of(second)


def test_other_seed_or_run_id_other_traffic(config):
    base = events_of(simulate(config, 5))
    reseeded = events_of(simulate(replace(config, seed=8), 5))
    renamed = events_of(simulate(replace(config, run_id="u"), 5))
    assert [e["amount"] for e in base] != [e["amount"] for e in reseeded]
    assert {e["event_id"] for e in base}.isdisjoint(e["event_id"] for e in renamed)


def test_step_returns_exactly_n_events_in_the_interval(config):
    generator = Generator(config, START_MS)
    batch = generator.step(300, START_MS + 3_000)
    assert len(batch.events) == 300
    assert all(START_MS <= e["event_time"] < START_MS + 3_000 for e in batch.events)
    assert [e["event_time"] for e in batch.events] == sorted(e["event_time"] for e in batch.events)
    assert len({e["event_id"] for e in batch.events}) == 300


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_fraud_share_near_configured_rate(config, rate):
    batches = simulate(replace(config, fraud_rate=rate), steps=300)
    events = sum(len(b.events) for b in batches)
    fraud = sum(b.fraud for b in batches)
    assert fraud / events == pytest.approx(rate, rel=0.2)
    assert set().union(*(b.patterns for b in batches)) == {"burst", "new-country", "unusual-amount", "unusual-merchant"}


def test_fraud_is_labelled_fraud_and_pattern_leaks_only_when_asked(config):
    batches = simulate(replace(config, fraud_rate=0.05, leak_pattern=True), steps=60)
    truth = {label["event_id"]: label["label"] for label in labels_of(batches)}
    for event in events_of(batches):
        is_fraud = event["attributes"][PATTERN_ATTRIBUTE] != "legit"
        assert truth[event["event_id"]] == int(is_fraud)
    assert not any(e["attributes"] for e in events_of(simulate(replace(config, fraud_rate=0.05), steps=10)))


def test_fraud_patterns_look_like_fraud(config):
    batches = simulate(replace(config, fraud_rate=0.1, leak_pattern=True), steps=60)
    by_pattern: dict[str, list[dict]] = {}
    for event in events_of(batches):
        by_pattern.setdefault(event["attributes"][PATTERN_ATTRIBUTE], []).append(event)
    risky = {c.mcc for c in catalog.RISKY_CATEGORIES}
    rare = {catalog.COUNTRIES[i].code for i in catalog.RARE_COUNTRIES}
    assert all(e["merchant_category"] in risky for e in by_pattern["unusual-merchant"])
    assert all(e["country"] in rare for e in by_pattern["new-country"])
    legit_eur = np.median([e["amount"] for e in by_pattern["legit"] if e["currency"] == "EUR"])
    odd_eur = np.median([e["amount"] for e in by_pattern["unusual-amount"] if e["currency"] == "EUR"])
    assert odd_eur > 5 * legit_eur


def test_label_delay_within_bounds_and_never_early(config):
    config = replace(config, label_delay_s=(2.0, 7.0), fraud_rate=0.05)
    generator = Generator(config, START_MS)
    times: dict[str, int] = {}
    t = START_MS
    for _ in range(100):
        t += 250
        batch = generator.step(125, t)
        times.update((e["event_id"], e["event_time"]) for e in batch.events)
        for label in batch.labels:
            assert label["label_time"] < t, "a label must not be released before its label_time"
            assert 2_000 <= label["label_time"] - times[label["event_id"]] <= 7_000
            assert label["source"] == "simulator"
    assert generator.pending_labels > 0


def test_label_share_samples_legit_but_keeps_all_fraud(config):
    batches = simulate(replace(config, label_share=0.25, fraud_rate=0.05), steps=100)
    labels = labels_of(batches)
    events = sum(len(b.events) for b in batches)
    fraud = sum(b.fraud for b in batches)
    assert sum(label["label"] for label in labels) == fraud
    assert (len(labels) - fraud) / (events - fraud) == pytest.approx(0.25, abs=0.02)


def _share(events, predicate):
    return sum(map(predicate, events)) / len(events)


@pytest.mark.parametrize(
    ("scenario", "measure", "minimum_change"),
    [
        (
            "amount-shift",
            lambda es: float(np.mean([math.log(e["amount"]) for e in es if e["currency"] == "EUR"])),
            math.log(1.8) * 0.9,
        ),
        ("merchant-mix", lambda es: _share(es, lambda e: e["merchant_id"].startswith("n-")), 0.25),
        (
            "new-country-wave",
            lambda es: _share(
                es, lambda e: e["country"] in {"BR", "IN", "JP", "MX", "TH", "ZA", "TR", "AE", "SG", "ID"}
            ),
            0.15,
        ),
        ("channel-shift", lambda es: _share(es, lambda e: e["channel"] == "ecommerce"), 0.2),
    ],
)
def test_drift_scenario_changes_the_distribution_from_its_start(config, scenario, measure, minimum_change):
    config = replace(config, fraud_rate=0.0, scenario=scenario, drift_at_s=50.0)
    events = events_of(simulate(config, steps=40))  # 200 events/s: 100 s of event time
    drift_ms = START_MS + 50_000
    before = [e for e in events if e["event_time"] < drift_ms]
    after = [e for e in events if e["event_time"] >= drift_ms]
    assert measure(after) - measure(before) >= minimum_change


def test_drift_ramp_blends_gradually(config):
    generator = Generator(replace(config, scenario="amount-shift", drift_at_s=10, drift_ramp_s=20), START_MS)
    factors = [generator.regime(START_MS + s * 1000).amount_factor for s in (0, 10, 20, 30, 60)]
    assert factors == pytest.approx([1.0, 1.0, 1.4, 1.8, 1.8])


def test_fraud_surge_raises_the_fraud_share(config):
    batches = simulate(replace(config, fraud_rate=0.01, scenario="fraud-surge"), steps=200)
    fraud = sum(b.fraud for b in batches) / sum(len(b.events) for b in batches)
    assert fraud > 0.025


def test_every_valid_event_and_label_matches_the_avro_schemas(config):
    batches = simulate(replace(config, fraud_rate=0.05, leak_pattern=True), steps=40)
    event_schema, label_schema = load_schema("event"), load_schema("label")
    events = events_of(batches)
    assert fastavro.validation.validate_many(events, event_schema, raise_errors=True)
    assert fastavro.validation.validate_many(labels_of(batches), label_schema, raise_errors=True)
    now_ms = max(e["event_time"] for e in events)
    assert [e for e in events if validate_event(e, now_ms)] == []


def test_invalid_events_fail_ingest_validation_but_still_encode(config):
    batches = simulate(replace(config, invalid_rate=0.1), steps=20)
    events = events_of(batches)
    now_ms = START_MS + 60_000
    invalid = [e for e in events if validate_event(e, now_ms)]
    assert len(invalid) == sum(b.invalid for b in batches) > 50
    assert fastavro.validation.validate_many(invalid, load_schema("event"), raise_errors=True)
    labelled = {label["event_id"] for label in labels_of(batches)}
    assert not labelled & {e["event_id"] for e in invalid}


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_each_mutation_is_rejected_by_ingest(config, kind):
    event = dict(simulate(config, steps=1)[0].events[0])
    MUTATIONS[kind](event)
    assert validate_event(event, event["event_time"] if kind != "far-future" else START_MS + 1_000)


def test_amounts_respect_currency_minor_units(config):
    events = events_of(simulate(replace(config, scenario="new-country-wave"), steps=20))
    jpy = [e["amount"] for e in events if e["currency"] == "JPY"]
    assert jpy and all(a == int(a) for a in jpy)
    assert all(round(e["amount"], 2) == e["amount"] for e in events)
    assert all(e["amount"] % 20 == 0 for e in events if e["channel"] == "atm" and e["currency"] == "EUR")


def test_rebase_moves_start_before_first_step_only(config):
    generator = Generator(config, START_MS)
    generator.rebase(START_MS + 60_000)
    batch = generator.step(100, START_MS + 61_000)
    assert min(e["event_time"] for e in batch.events) >= START_MS + 60_000
    with pytest.raises(RuntimeError):
        generator.rebase(START_MS)


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="fraud_rate"):
        GeneratorConfig(fraud_rate=2.0)
    with pytest.raises(ValueError, match="label delays"):
        GeneratorConfig(label_delay_s=(5.0, 1.0))
    with pytest.raises(ValueError, match="unknown scenario"):
        Generator(GeneratorConfig(cards=10, scenario="meteor"), START_MS)
    with pytest.raises(ValueError, match="unknown fraud patterns"):
        Generator(GeneratorConfig(cards=10, fraud_patterns=("heist",)), START_MS)
