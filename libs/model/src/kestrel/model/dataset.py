"""Training sets: feature matrices in feature-set order with labels and event times; no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kestrel.featureset import FeatureSet, offline
from kestrel.model.errors import ModelError
from kestrel.model.events import EventReference, event_reference


@dataclass(frozen=True)
class TrainingSet:
    """Rows sorted by event time: X (n x d, columns in `feature_names` order), y in {0, 1}."""

    X: np.ndarray
    y: np.ndarray
    event_time: np.ndarray
    """Milliseconds since the epoch; the order the time-ordered holdout splits on."""
    feature_names: tuple[str, ...]
    feature_set_version: str
    """e.g. `card.v1`: what the model's input vector means."""
    events: EventReference | None = None
    """The raw event columns of these rows, counted (from_events only): the drift monitor's events reference. A
    part (take) has none: it would describe other rows."""

    def __post_init__(self) -> None:
        n, d = self.X.shape if self.X.ndim == 2 else (-1, -1)
        if d != len(self.feature_names):
            raise ModelError(f"X has {d} columns but the feature set names {len(self.feature_names)}")
        if len(self.y) != n or len(self.event_time) != n:
            raise ModelError(f"X has {n} rows, y {len(self.y)}, event_time {len(self.event_time)}")
        if not np.isfinite(self.X).all():
            raise ModelError("X holds NaN or infinite values")
        if not np.isin(self.y, (0, 1)).all():
            raise ModelError("labels must be 0 or 1")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    def take(self, rows: np.ndarray | slice) -> TrainingSet:
        return TrainingSet(
            self.X[rows], self.y[rows], self.event_time[rows], self.feature_names, self.feature_set_version
        )


def from_matrix(X: np.ndarray, y: np.ndarray, event_time: np.ndarray, feature_set: FeatureSet) -> TrainingSet:
    """A training set from features computed elsewhere (e.g. logged vectors joined with labels)."""
    order = np.argsort(np.asarray(event_time), kind="stable")
    return TrainingSet(
        np.asarray(X, dtype=np.float64)[order],
        np.asarray(y, dtype=np.int8)[order],
        np.asarray(event_time, dtype=np.int64)[order],
        tuple(feature_set.names),
        feature_set.version_id,
    )


def from_events(
    events: Sequence[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]], feature_set: FeatureSet
) -> TrainingSet:
    """Features recomputed offline from events (arrival order) joined with their labels by event_id.

    Events the stream would reject and events without a label are left out; a later label for the
    same event wins, as in the labels topic.
    """
    label_of = {label["event_id"]: int(label["label"]) for label in labels}
    vectors = offline.compute(events, feature_set)
    keep = [
        i for i, (event, row) in enumerate(zip(events, vectors)) if row is not None and event["event_id"] in label_of
    ]
    if not keep:
        raise ModelError("no labelled, accepted events to train on")
    X = np.array([vectors[i] for i in keep], dtype=np.float64)
    y = np.array([label_of[events[i]["event_id"]] for i in keep])
    t = np.array([events[i][feature_set.time] for i in keep], dtype=np.int64)
    return replace(from_matrix(X, y, t, feature_set), events=event_reference(events[i] for i in keep))


def time_split(data: TrainingSet, holdout: float = 0.2) -> tuple[TrainingSet, TrainingSet]:
    """Earlier rows to train on, the latest `holdout` share to test on: the future is never in training."""
    if not 0 < holdout < 1:
        raise ModelError("holdout must be in (0, 1)")
    cut = round(len(data) * (1 - holdout))
    train, test = data.take(slice(0, cut)), data.take(slice(cut, None))
    for part, name in ((train, "training"), (test, "holdout")):
        if part.positives == 0 or part.positives == len(part):
            raise ModelError(f"the {name} part has only one class; more data or another split is needed")
    return train, test
