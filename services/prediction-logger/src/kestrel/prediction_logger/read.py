"""The read API over the prediction log, for the drift monitor and the retrain loop: no ad-hoc SQL elsewhere.

Every function takes an asyncpg connection (or pool) and a half-open event-time range [start, end), which
PostgreSQL prunes to the daily partitions it covers. Rows hold packed feature values without names; the
feature matrices take the names from `feature_names`, each feature-set version's names in vector order
(e.g. `{fs.version_id: fs.names}`). Rows logged before packing carry their names in a jsonb map."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

_LABELLED = """
SELECT prediction_id, event_id, entity_id, event_time, score, decision, label, label_time
FROM labelled_predictions
WHERE model_name = $1 AND model_version = $2 AND event_time >= $3 AND event_time < $4
ORDER BY event_time, prediction_id
"""

_SCORES = """
SELECT score FROM predictions WHERE model_name = $1 AND model_version = $2 AND source = $3
"""

_WINDOW = """
SELECT prediction_id, score, feature_set_version, features, feature_values FROM predictions
WHERE model_name = $1 AND model_version = $2 AND event_time >= $3 AND event_time < $4
ORDER BY event_time, prediction_id
"""

_THRESHOLD = """
SELECT threshold FROM predictions
WHERE model_name = $1 AND model_version = $2 AND event_time >= $3 AND event_time < $4 AND threshold IS NOT NULL
GROUP BY threshold ORDER BY count(*) DESC, threshold LIMIT 1
"""

# Features as logged when the prediction was made; the newest label known at `as_of` (none: left out).
_TRAINING = """
SELECT p.prediction_id, p.event_id, p.event_time, p.feature_set_version, p.features, p.feature_values, l.label
FROM predictions AS p
JOIN LATERAL (
    SELECT label FROM labels
    WHERE labels.event_id = p.event_id AND labels.label_time <= $4
    ORDER BY label_time DESC LIMIT 1
) AS l ON true
WHERE p.model_name = $1 AND p.event_time >= $2 AND p.event_time < $3 AND ($5::text IS NULL OR p.source = $5)
ORDER BY p.event_time, p.prediction_id
"""

_LABELLED_COUNT = """
SELECT count(*) FROM predictions AS p
WHERE p.model_name = $1 AND p.event_time >= $2 AND p.source = 'stream'
  AND EXISTS (SELECT 1 FROM labels WHERE labels.event_id = p.event_id)
"""


@dataclass(frozen=True)
class LabelledPrediction:
    prediction_id: str
    event_id: str
    entity_id: str
    event_time: datetime
    score: float
    decision: bool
    label: int
    label_time: datetime


@dataclass(frozen=True)
class Matrix:
    """Rows in event-time order; `features[i][j]` is feature `names[j]` of row i (None: not logged or NaN)."""

    ids: list[str]
    names: list[str]
    features: list[list[float | None]]
    column: list[Any]
    """One value per row: the score (score_window) or the label (training_set)."""
    event_ids: list[str] = field(default_factory=list)
    """training_set: each row's event id (several model versions may have scored one event)."""
    event_times_ms: list[int] = field(default_factory=list)
    """training_set: each row's event time, ms since the epoch (the order a time-ordered holdout splits on)."""


async def labelled_predictions(
    conn: Any, model_name: str, model_version: str, start: datetime, end: datetime
) -> list[LabelledPrediction]:
    """The predictions of one model version in [start, end) that have a label, each with its newest label."""
    rows = await conn.fetch(_LABELLED, model_name, model_version, start, end)
    return [LabelledPrediction(**dict(r)) for r in rows]


async def version_scores(conn: Any, model_name: str, model_version: str, source: str) -> list[float]:
    """Every score one model version gave as `source` (e.g. a challenger's shadow predictions)."""
    return [float(r["score"]) for r in await conn.fetch(_SCORES, model_name, model_version, source)]


async def labelled_count(conn: Any, model_name: str, since: datetime) -> int:
    """How many of the stream scorer's predictions of `model_name` since `since` (event time) have a label: what
    a retrain would learn from that the last training did not see."""
    return int(await conn.fetchval(_LABELLED_COUNT, model_name, since))


async def score_window(
    conn: Any,
    model_name: str,
    model_version: str,
    start: datetime,
    end: datetime,
    feature_names: Mapping[str, Sequence[str]] | None = None,
) -> Matrix:
    """Scores and the feature matrix of one model version's predictions in [start, end) (drift statistics)."""
    rows = await conn.fetch(_WINDOW, model_name, model_version, start, end)
    return matrix([r["prediction_id"] for r in rows], rows, [r["score"] for r in rows], feature_names)


async def window_threshold(
    conn: Any, model_name: str, model_version: str, start: datetime, end: datetime
) -> float | None:
    """The decision threshold most of one model version's predictions in [start, end) were made at (None: none)."""
    value = await conn.fetchval(_THRESHOLD, model_name, model_version, start, end)
    return None if value is None else float(value)


async def training_set(
    conn: Any,
    model_name: str,
    start: datetime,
    end: datetime,
    labels_as_of: datetime,
    feature_names: Mapping[str, Sequence[str]] | None = None,
    source: str | None = None,
) -> tuple[Matrix, list[str]]:
    """Point in time: the features each prediction of `model_name` in [start, end) was made with, and the label
    known at `labels_as_of` (rerunning with the same instant gives the same set). Also returns the feature-set
    versions found, so a caller can refuse to mix definitions. `source` keeps one source's predictions
    (`stream`: the stream scorer's, made with the stream's exact vectors)."""
    rows = await conn.fetch(_TRAINING, model_name, start, end, labels_as_of, source)
    versions = sorted({r["feature_set_version"] for r in rows})
    found = matrix([r["prediction_id"] for r in rows], rows, [r["label"] for r in rows], feature_names)
    times = [int(r["event_time"].timestamp() * 1000) for r in rows]
    return replace(found, event_ids=[r["event_id"] for r in rows], event_times_ms=times), versions


def matrix(
    ids: list[str],
    logged: Sequence[Mapping[str, Any]],
    column: list[Any],
    feature_names: Mapping[str, Sequence[str]] | None = None,
) -> Matrix:
    """Logged rows (feature_set_version, and features or feature_values) as a dense matrix over the union of
    their names, in the order first met: definition order for packed rows, name order for jsonb maps."""
    maps = [_by_name(row, feature_names or {}) for row in logged]
    names = list(dict.fromkeys(name for m in maps for name in m))
    return Matrix(ids, names, [[m.get(name) for name in names] for m in maps], column)


def _by_name(row: Mapping[str, Any], feature_names: Mapping[str, Sequence[str]]) -> dict[str, float | None]:
    values = row["feature_values"]
    if values is None:
        features = row["features"]
        parsed: dict[str, float | None] = json.loads(features) if isinstance(features, str) else dict(features)
        return dict(sorted(parsed.items()))
    names = feature_names.get(row["feature_set_version"])
    if names is None or len(names) != len(values):
        raise ValueError(f"no feature names of {row['feature_set_version']} for its {len(values)} values")
    return {name: None if math.isnan(v) or math.isinf(v) else v for name, v in zip(names, values)}
