"""Performance on simulator traffic scored by the checked-in model: steady, covariate-shifted and prior-shifted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kestrel.drift_monitor.performance import PerformanceReport, assess
from kestrel.featureset import load_feature_set
from kestrel.model import ModelArtifact, ReferencePerformance, from_events, load, metrics, reference_performance
from kestrel.simulator.generator import Generator, GeneratorConfig
from kestrel.simulator.population import natural_rate

MODEL = Path(__file__).resolve().parents[3] / "infra" / "triton" / "models" / "kestrel_fraud" / "1"
CARDS, THRESHOLD = 3000, 0.5
WARM_UP = 10_000
"""Leading events left out: the cards' histories are still empty, so their features are unlike steady traffic."""


@pytest.fixture(scope="module")
def model() -> ModelArtifact:
    return load(MODEL)


def _traffic(model: ModelArtifact, scenario: str, events: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of `events` simulated payments, the scenario in force from the first one."""
    rate, start = natural_rate(CARDS), 1_750_000_000_000
    generator = Generator(GeneratorConfig(cards=CARDS, seed=seed, run_id=f"s{seed}", scenario=scenario), start)
    records, labels = [], []
    for step in range(1, events // 1000 + 1):
        batch = generator.step(1000, start + int(step * 1000 * 1000 / rate))
        records += batch.events
        labels += batch.labels
    data = from_events(records, labels + generator.drain_labels(), load_feature_set("card"))
    return model.predict(data.X)[WARM_UP:], data.y[WARM_UP:].astype(bool)


@pytest.fixture(scope="module")
def reference(model: ModelArtifact) -> ReferencePerformance:
    # The checked-in version predates reference performance: rebuild it as training would, on rows it never saw.
    scores, y = _traffic(model, "none", 60_000, seed=7)
    return reference_performance(y, scores, THRESHOLD)


def _reports(scores: np.ndarray, y: np.ndarray, reference: ReferencePerformance) -> dict[str, PerformanceReport]:
    """The window as the monitor sees it before any label, with a few labels, and once all labels are in."""
    return {
        "no labels": assess(scores, scores[:0], y[:0], THRESHOLD, reference),
        "150 labels": assess(scores, scores[:150], y[:150], THRESHOLD, reference),
        "all labels": assess(scores, scores, y, THRESHOLD, reference),
    }


@pytest.mark.parametrize("scenario", ["none", "amount-shift", "merchant-mix", "channel-shift"])
def test_traffic_the_model_still_handles_is_never_degraded(scenario, model, reference):
    scores, y = _traffic(model, scenario, 30_000, seed=11)
    reports = _reports(scores, y, reference)
    assert [r.basis for r in reports.values()] == ["estimated", "estimated", "measured"]
    assert not any(r.degraded for r in reports.values()), reports
    measured = reports["all labels"]
    assert reports["no labels"].estimated_precision == pytest.approx(measured.precision, abs=0.05)


def test_a_wave_of_payments_from_rare_countries_is_degraded_before_the_labels(model, reference):
    scores, y = _traffic(model, "new-country-wave", 30_000, seed=11)
    reports = _reports(scores, y, reference)
    assert all(r.degraded for r in reports.values()), reports
    assert [r.basis for r in reports.values()] == ["estimated", "estimated", "measured"]
    before, after = reports["no labels"], reports["all labels"]
    assert before.estimated_precision is not None and after.precision is not None
    # Flagged legitimate payments look like doubtful fraud to the calibration: the estimate falls, the
    # truth falls further (CBPE sees only the model's doubt, not the mistakes it is sure of).
    assert after.precision < before.estimated_precision < reference.mean("estimated_precision") - 0.03


def test_a_fraud_surge_is_prior_drift_that_raises_measured_performance(model, reference):
    scores, y = _traffic(model, "fraud-surge", 30_000, seed=11)
    reports = _reports(scores, y, reference)
    assert not any(r.degraded for r in reports.values()), reports
    measured = reports["all labels"]
    assert measured.pr_auc is not None and measured.pr_auc > reference.mean("pr_auc")
    assert y.mean() > 3 * np.mean(np.array(reference.chunk_positives) / np.array(reference.chunk_rows))
    # P(fraud | score) itself rose, which CBPE assumes never happens: it overstates recall here.
    estimated_recall = reports["no labels"].estimated_recall
    assert estimated_recall is not None and measured.recall is not None and estimated_recall > measured.recall
    assert metrics.pr_auc(y, scores) == measured.pr_auc
