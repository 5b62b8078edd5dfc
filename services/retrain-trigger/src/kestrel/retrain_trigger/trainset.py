"""The training set of a retraining run: the prediction log's exact vectors, point in time, one row per event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from kestrel.featureset import FeatureSet
from kestrel.model import TrainingSet
from kestrel.model.dataset import from_matrix
from kestrel.prediction_logger import read


class NotEnoughData(ValueError):
    """The window holds too few labelled predictions (or frauds) to train and judge a model on."""


async def load_training_set(
    conn: Any,
    feature_set: FeatureSet,
    model_name: str,
    start: datetime,
    end: datetime,
    labels_as_of: datetime,
    *,
    min_rows: int = 1000,
    min_positives: int = 20,
) -> TrainingSet:
    """The stream scorer's vectors of `model_name`'s predictions in [start, end) with the labels known at
    `labels_as_of`: each event once (several versions may have scored it, with the same vector), rows with a
    feature missing (logged as NaN) left out."""
    names = {feature_set.version_id: feature_set.names}
    matrix, versions = await read.training_set(conn, model_name, start, end, labels_as_of, names, source="stream")
    others = [v for v in versions if v != feature_set.version_id]
    if others:
        raise NotEnoughData(f"the window mixes feature-set versions {versions}; train on {feature_set.version_id} only")
    keep, seen = [], set()
    for i, (event, values) in enumerate(zip(matrix.event_ids, matrix.features)):
        if event in seen or any(v is None for v in values):
            continue
        seen.add(event)
        keep.append(i)
    return _checked(matrix, keep, feature_set, min_rows, min_positives)


def _checked(matrix: Any, keep: list[int], feature_set: FeatureSet, min_rows: int, min_positives: int) -> TrainingSet:
    if not keep:
        raise NotEnoughData("no labelled stream predictions in the window")
    X = np.array([matrix.features[i] for i in keep], dtype=np.float64)
    y = np.array([matrix.column[i] for i in keep], dtype=np.int8)
    t = np.array([matrix.event_times_ms[i] for i in keep], dtype=np.int64)
    if len(y) < min_rows or int(y.sum()) < min_positives:
        raise NotEnoughData(
            f"{len(y)} labelled predictions with {int(y.sum())} frauds in the window; "
            f"at least {min_rows} and {min_positives} are needed"
        )
    return from_matrix(X, y, t, feature_set)
