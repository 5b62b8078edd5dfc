"""Fixtures for drift statistics tests: the card feature set, its card-like generator and a reference."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.drift_monitor.synthetic import CardLike
from kestrel.drift_monitor.verdict import Reference, feature_kinds
from kestrel.featureset import FeatureSet, load_feature_set
from kestrel.model.reference import compute_reference


@pytest.fixture(scope="session")
def card() -> FeatureSet:
    return load_feature_set("card")


@pytest.fixture(scope="session")
def card_like(card: FeatureSet) -> CardLike:
    return CardLike(card)


@pytest.fixture(scope="session")
def card_reference(card: FeatureSet, card_like: CardLike) -> Reference:
    """As a model version carries it: bins from 50k training rows, a 10k-row sample for the tests."""
    rng = np.random.default_rng(7)
    rows = card_like.rows(rng, 50_000)
    stats = compute_reference(rows, rng.random(len(rows)), card_like.names)
    return Reference.from_stats(stats, feature_kinds(card))
