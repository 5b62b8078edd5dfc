"""Draw many varied examples of a strategy up front, so a run can send them to servers outside hypothesis."""

from __future__ import annotations

import os
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

T = TypeVar("T")
INPUTS_ENV = "KESTREL_FUZZ_INPUTS"
SEED_ENV = "KESTREL_FUZZ_SEED"
CI_INPUTS = 400
"""Inputs of one run in the test suite, spread over every target; `python -m tests.fuzz` sends more."""


def total_inputs() -> int:
    return int(os.environ.get(INPUTS_ENV, CI_INPUTS))


def run_seed() -> int:
    return int(os.environ.get(SEED_ENV, "20261203"))


# Each target's share of a run: single calls weigh more than batches and streams (each of those is one input).
WEIGHTS = {
    "ingest.Publish": 3,
    "ingest.PublishBatch": 1,
    "ingest.PublishStream": 1,
    "ingest.undecodable": 1,
    "inference.Predict": 3,
    "inference.PredictBatch": 1,
    "inference.PredictStream": 1,
    "inference.undecodable": 1,
    "events -> features": 2,
    "events -> drift-monitor": 2,
    "features -> feature-writer": 2,
    "features -> inference-scorer": 2,
    "predictions -> prediction-logger": 2,
    "labels -> prediction-logger": 2,
    "predictions -> drift-monitor": 2,
    "drift-reports -> alerting": 2,
    "alerts -> retrain-trigger": 2,
    "model-lifecycle -> inference": 1,
}


def share(target: str) -> int:
    """This target's part of the run's inputs, at least 10 so every target is exercised."""
    return max(10, round(total_inputs() * WEIGHTS[target] / sum(WEIGHTS.values())))


def draw(strategy: st.SearchStrategy[T], n: int, salt: int = 0) -> list[T]:
    """n examples from hypothesis' generator (seeded: a failing run is replayed with the same seed); no
    shrinking, the caller reports any input that misbehaves as it is."""
    out: list[Any] = []

    @seed(run_seed() + salt)
    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        out.append(example)

    while len(out) < n:  # hypothesis stops early when it believes the space is exhausted; draw again
        before = len(out)
        collect()
        if len(out) == before:
            break
        salt += 1
    return out[:n]
