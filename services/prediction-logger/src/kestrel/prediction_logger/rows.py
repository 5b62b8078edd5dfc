"""Decoded predictions and labels to table rows, and the daily partition plan: plain values, no I/O."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import Rejection

PREDICTION_COLUMNS = (
    "prediction_id",
    "event_id",
    "entity_id",
    "event_time",
    "model_name",
    "model_version",
    "score",
    "threshold",
    "decision",
    "features",
    "feature_values",
    "feature_set_version",
    "features_age_ms",
    "degraded",
    "flags",
    "latency_us",
    "source",
    "predicted_at",
)
LABEL_COLUMNS = ("event_id", "entity_id", "label", "label_time", "source")
TABLES = {"predictions": PREDICTION_COLUMNS, "labels": LABEL_COLUMNS}
"""Each table the logger writes, with the columns it copies (in COPY order)."""


@dataclass
class Rows:
    """One batch made ready for the database: rows by table, and the records to dead-letter."""

    predictions: list[tuple[Any, ...]] = field(default_factory=list)
    labels: list[tuple[Any, ...]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def prepare(records: Sequence[Any], decoded: Sequence[Any], table: str, rows: Rows | None = None) -> Rows:
    """Rows of `table` for the good records; rejections for undecodable ones and for values PostgreSQL would
    refuse (one refused row would fail the whole batch's transaction)."""
    rows = rows or Rows()
    to_row = prediction_row if table == "predictions" else label_row
    for record, value in zip(records, decoded):
        if isinstance(value, SerializationError):
            rows.rejections.append(Rejection(record, value.reason))
            continue
        try:
            getattr(rows, table).append(to_row(value))
        except ValueError as exc:
            rows.rejections.append(Rejection(record, str(exc)))
    return rows


def prediction_row(p: Mapping[str, Any]) -> tuple[Any, ...]:
    """The packed feature_values go to their double precision[] column; a record written before them (features
    by name only) keeps its map in the jsonb column. A row has one or the other."""
    _require(p, "prediction_id", "event_id", "entity_id", "model_name", "model_version")
    _no_nul("a text field", p["feature_set_version"], p["source"], *p["flags"], *p["features"])
    values = p.get("feature_values")
    return (
        p["prediction_id"],
        p["event_id"],
        p["entity_id"],
        timestamp(p["event_time"]),
        p["model_name"],
        p["model_version"],
        p["score"],
        p["threshold"],
        p["decision"],
        None if values else features_json(p["features"]),
        list(values) if values else None,
        p["feature_set_version"],
        p["features_age_ms"],
        p["degraded"],
        list(p["flags"]),
        p["latency_us"],
        p["source"],
        timestamp(p["predicted_at"]),
    )


def label_row(lab: Mapping[str, Any]) -> tuple[Any, ...]:
    _require(lab, "event_id", "entity_id")
    _no_nul("source", lab["source"])
    if lab["label"] not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {lab['label']}")
    return (lab["event_id"], lab["entity_id"], lab["label"], timestamp(lab["label_time"]), lab["source"])


def timestamp(ms: int) -> datetime:
    """Avro timestamp-millis as an aware UTC datetime; out of PostgreSQL's and Python's range is invalid."""
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise ValueError(f"timestamp {ms} ms out of range") from exc


def features_json(features: Mapping[str, float]) -> str:
    """jsonb text; NaN (a feature the model saw missing) becomes null, which JSON can hold."""
    clean = {name: (None if math.isnan(v) or math.isinf(v) else v) for name, v in features.items()}
    return json.dumps(clean, separators=(",", ":"))


def _require(value: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if not value[name]:
            raise ValueError(f"{name} is empty")
        _no_nul(name, value[name])


def _no_nul(what: str, *texts: str) -> None:
    """PostgreSQL text cannot hold NUL: one such row would fail the whole batch's transaction."""
    if any("\x00" in text for text in texts):
        raise ValueError(f"NUL character in {what}")


@dataclass(frozen=True)
class PartitionPlan:
    create: list[date]
    drop: list[str]


def partition_name(table: str, day: date) -> str:
    return f"{table}_{day:%Y%m%d}"


def partition_plan(table: str, today: date, ahead: int, retention_days: int, existing: Iterable[str]) -> PartitionPlan:
    """Days from today to `ahead` days on that lack a partition; existing daily partitions of days that ended
    more than `retention_days` ago (the default partition is never dropped)."""
    have = set(existing)
    days = [today + timedelta(days=i) for i in range(ahead + 1)]
    cutoff = partition_name(table, today - timedelta(days=retention_days))
    drop = sorted(n for n in have if _is_daily(table, n) and n < cutoff)
    return PartitionPlan([d for d in days if partition_name(table, d) not in have], drop)


def _is_daily(table: str, name: str) -> bool:
    suffix = name.removeprefix(f"{table}_")
    return suffix != name and len(suffix) == 8 and suffix.isdigit()
