"""Fixtures for the model tests: the card feature set and a synthetic, time-ordered fraud training set."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel.featureset import FeatureSet, load_feature_set
from kestrel.model import TrainingSet, from_matrix


@pytest.fixture(scope="session")
def feature_set() -> FeatureSet:
    return load_feature_set("card")


def synthetic_rows(feature_set: FeatureSet, n: int, fraud_rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Card-like features: log-normal amounts and sums, small counts, flags; fraud as bursts or new countries.

    Fraud rows follow one of two patterns (an OR, like the simulator's), each visible in a few
    columns only, with overlap and label noise, so a model must combine features to rank well.
    """
    rng = np.random.default_rng(seed)
    names = feature_set.names
    X = np.zeros((n, len(names)))
    for j, spec in enumerate(feature_set.features):
        if spec.dtype == "bool":
            X[:, j] = rng.random(n) < 0.2
        elif spec.aggregation in ("count", "distinct"):
            X[:, j] = 1 + rng.poisson(1.0 if (spec.window_s or 0) <= 3600 else 4.0, n)
        elif spec.aggregation == "hour_of_day":
            X[:, j] = rng.integers(0, 24, n)
        elif spec.aggregation == "zscore":
            X[:, j] = rng.standard_normal(n)
        else:
            X[:, j] = rng.lognormal(3.0, 1.0, n)
    y = (rng.random(n) < fraud_rate).astype(np.int8)
    fraud = np.flatnonzero(y)
    burst = fraud[rng.random(len(fraud)) < 0.6]
    travel = np.setdiff1d(fraud, burst)
    X[burst, names.index("txn_count_1m")] += 2 + rng.poisson(3, len(burst))
    X[burst, names.index("amount_std_1m")] *= 3
    X[travel, names.index("country_new_24h")] = 1
    X[travel, names.index("country_distinct_1h")] += 1 + rng.poisson(1, len(travel))
    X[travel, names.index("amount_rel_mean_24h")] *= 6
    return X, y


@pytest.fixture(scope="session")
def synthetic(feature_set: FeatureSet) -> TrainingSet:
    X, y = synthetic_rows(feature_set, 20_000, 0.02, seed=3)
    t = 1_700_000_000_000 + np.sort(np.random.default_rng(4).integers(0, 86_400_000 * 7, len(y)))
    return from_matrix(X, y, t, feature_set)
