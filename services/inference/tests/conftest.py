"""Fixtures for inference tests: isolated topics, the fraud model loaded in Triton, its numpy twin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.paths import model_repository
from kestrel.featureset import offline
from kestrel.model.artifact import load as load_artifact
from kestrel.model.artifact import versions

from .support import CARD, MODEL, Topics


@pytest.fixture(scope="session")
def artifact():
    """The checked-in model version Triton serves: its numpy forward pass is the expected score."""
    root = model_repository()
    return load_artifact(root / MODEL / str(max(versions(root, MODEL))))


@pytest.fixture
async def topics(kafka) -> Topics:
    t = Topics(kafka.bootstrap)
    await t.apply(
        "kestrel.predictions.v1", "kestrel.features.v1", "kestrel.model-lifecycle.v1", dead_letter_topic("inference")
    )
    return t


@pytest.fixture(scope="session")
async def fraud_model(triton):
    """Triton with the fraud model loaded (no test unloads it), whether started here or already running."""
    await triton.ensure_loaded(MODEL)
    return triton


@pytest.fixture
def expected_vector() -> Callable[[list[dict[str, Any]]], np.ndarray]:
    """The stream's vector for the last event of a card history (offline recomputation)."""

    def compute(events: list[dict[str, Any]]) -> np.ndarray:
        return np.asarray(offline.compute(events, CARD)[-1])

    return compute
