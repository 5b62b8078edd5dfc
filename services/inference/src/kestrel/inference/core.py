"""Inference's pure core on plain values: request validation, the request-time merge and its flags, predictions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kestrel.common.errors import InvalidArgumentError
from kestrel.common.validation import Limits, Violation, check_id, validate_event
from kestrel.featureset.request import RequestFeatures

if TYPE_CHECKING:
    from kestrel.online_store import OnlineBatch

MISSING, STALE, NEWER, STORE_DOWN, FALLBACK, APPROXIMATE = (
    "missing_features",
    "stale_features",
    "features_newer_than_event",
    "online_store_unavailable",
    "fallback_score",
    "features_approximate",
)
FALLBACK_MODEL = "fallback"
"""The model name of predictions answered with the fallback score while the model is unavailable."""

_IDS = uuid.UUID("0b7c1f8e-5a4d-4f0e-9a61-6b3e2f1c9d40").bytes


@dataclass(frozen=True, slots=True)
class Request:
    """A Predict request as plain values (the servicer builds it from the protobuf message)."""

    event: dict[str, Any] | None
    """The event as its Avro record; None when the request carries none."""
    entity_id: str = ""
    """Overrides the event's entity when set."""
    request_id: str = ""
    size: int = 0
    """The encoded event's size in bytes, for the event size limit."""


@dataclass(slots=True)
class Item:
    """One validated request."""

    entity_id: str
    record: dict[str, Any]
    """The event as its Avro record."""
    request_id: str = ""


@dataclass(slots=True)
class Prediction:
    """One scored event, whichever path scored it: what Predict answers and what the prediction record holds."""

    prediction_id: str
    entity_id: str
    event_id: str
    event_time: int
    score: float
    decision: bool
    threshold: float
    model_name: str
    model_version: str
    feature_set_version: str
    features: Sequence[float]
    features_age_ms: int
    flags: list[str]
    request_id: str = ""

    @property
    def degraded(self) -> bool:
        """Flagged for anything but features newer than the event (which is expected under replays)."""
        return bool(self.flags) and any(f != NEWER for f in self.flags)


@dataclass(frozen=True, slots=True)
class StreamRows:
    """Feature vectors of the stream, ready to score: a column per field, the vectors one array."""

    entity_ids: list[str]
    event_ids: list[str]
    event_times: list[int]
    values: np.ndarray
    """float64, (rows, features), each row in the feature set's definition order."""

    def __len__(self) -> int:
        return len(self.entity_ids)


@dataclass(frozen=True, slots=True)
class StreamScored:
    """The stream's predictions of a batch, column by column (rows line up with `rows`)."""

    rows: StreamRows
    prediction_ids: list[str]
    scores: list[float]
    decisions: list[bool]
    versions: list[str]
    ages_ms: list[int]
    model_name: str
    threshold: float
    feature_set_version: str


def validate(
    requests: Sequence[Request], limits: Limits, now_ms: int, field_prefix: Callable[[int], str] = lambda i: ""
) -> list[Item]:
    """Validates every request; one InvalidArgumentError naming every bad field (with its request index)."""
    items: list[Item] = []
    violations: list[Violation] = []
    for i, request in enumerate(requests):
        prefix = field_prefix(i)
        if request.event is None:
            violations.append(Violation(f"{prefix}event", "is required"))
            continue
        for v in validate_event(request.event, now_ms, limits, size=request.size):
            violations.append(Violation(f"{prefix}event.{v.field}", v.reason))
        if request.entity_id and (bad := check_id(request.entity_id, f"{prefix}entity_id")):
            violations.append(bad)
        items.append(Item(request.entity_id or request.event["entity_id"], request.event, request.request_id))
    if violations:
        first, *rest = violations
        raise InvalidArgumentError(first.field, first.reason, [(v.field, v.reason) for v in rest])
    return items


def _fixed_prefix(prefix: str) -> Callable[[int], str]:
    """A field prefix that ignores the index it is given (one request validated on its own)."""
    return lambda _: prefix


def valid_prefix(requests: Sequence[Request], limits: Limits, now_ms: int, base: int = 0) -> list[Item]:
    """The requests before the first invalid one, validated (request indexes counted from `base`)."""
    items: list[Item] = []
    for k, request in enumerate(requests):
        try:
            items += validate([request], limits, now_ms, _fixed_prefix(f"requests[{base + k}]."))
        except InvalidArgumentError:
            break
    return items


def merge(
    request_features: RequestFeatures, items: Sequence[Item], online: OnlineBatch, store_down: bool
) -> tuple[np.ndarray, list[list[str]]]:
    """Each request's vector (the model's rows) and each row's flags. Rows whose entity's event log holds
    every event the longest window reaches get the stream's own vector (exact); the rest (a log that cannot
    be trusted yet, flagged features_approximate) the stored vector advanced by the event."""
    n = len(items)
    included = np.fromiter(
        (online.event_ids[i] == item.record["event_id"] for i, item in enumerate(items)), dtype=bool, count=n
    )
    event_time = np.fromiter((item.record["event_time"] for item in items), dtype=np.int64, count=n)
    flags = [freshness(online, i, bool(included[i]), int(event_time[i]), store_down) for i in range(n)]
    exact = _exact_rows(request_features, online, event_time, included)
    matrix = np.empty((n, len(request_features.feature_set.names)), dtype=np.float64)
    if len(exact) < n:
        rest = np.setdiff1d(np.arange(n), exact)
        matrix[rest] = _advanced(
            request_features, [items[i] for i in rest], online, rest, event_time[rest], included[rest]
        )
        if online.logs is not None:
            for i in rest[~included[rest]].tolist():
                flags[i].append(APPROXIMATE)
    for i in exact:
        log = online.logs[i].columns  # type: ignore[index]
        matrix[i] = request_features.from_log(log, items[i].record)
    return matrix, flags


def _exact_rows(
    request_features: RequestFeatures, online: OnlineBatch, event_time: np.ndarray, included: np.ndarray
) -> list[int]:
    """Rows the event log answers: not already the stored vector's own event, and the log complete over the
    longest window before the event."""
    if online.logs is None:
        return []
    start = (event_time - request_features.longest_ms).tolist()
    return [i for i, log in enumerate(online.logs) if not included[i] and log.complete_after(start[i])]


def _advanced(
    request_features: RequestFeatures,
    items: Sequence[Item],
    online: OnlineBatch,
    rows: np.ndarray,
    event_time: np.ndarray,
    included: np.ndarray,
) -> np.ndarray:
    """The stored vectors of `rows` advanced by their events (returned as stored where already included)."""
    source = request_features.source or "amount"
    amount = np.fromiter((item.record[source] for item in items), dtype=np.float64, count=len(items))
    return request_features.merge(
        online.values[rows], online.found[rows], online.event_time_ms[rows], amount, event_time, included
    )


def freshness(online: OnlineBatch, i: int, included: bool, event_time: int, store_down: bool) -> list[str]:
    """Flags on row i's stored features: unavailable, missing or stale, and newer than the event scored."""
    flags: list[str] = []
    if store_down:
        flags.append(STORE_DOWN)
    elif not online.found[i]:
        flags.append(MISSING)
    elif online.stale[i]:
        flags.append(STALE)
    if online.found[i] and not included and online.event_time_ms[i] > event_time:
        flags.append(NEWER)
    return flags


def predictions(
    items: Sequence[Item],
    matrix: np.ndarray,
    scores: Sequence[float] | np.ndarray,
    versions: Sequence[str],
    model_name: str,
    ages_ms: Sequence[int] | np.ndarray,
    flags: list[list[str]],
    *,
    threshold: float,
    feature_set_version: str,
) -> list[Prediction]:
    """Predict's answers, each with a fresh random id (a request is not replayed: a retry is a new prediction)."""
    if model_name == FALLBACK_MODEL:
        for row in flags:
            row.append(FALLBACK)
    return [
        Prediction(
            uuid.uuid4().hex,
            item.entity_id,
            item.record["event_id"],
            item.record["event_time"],
            float(scores[i]),
            bool(scores[i] >= threshold),
            threshold,
            model_name,
            versions[i],
            feature_set_version,
            matrix[i].tolist(),
            int(ages_ms[i]),
            flags[i],
            item.request_id,
        )
        for i, item in enumerate(items)
    ]


def stream_predictions(
    rows: StreamRows,
    scores: Sequence[float] | np.ndarray,
    versions: Sequence[str],
    model_name: str,
    now_ms: int,
    *,
    threshold: float,
    feature_set_version: str,
) -> StreamScored:
    """The stream's predictions: ids derived from (event, model, version), so a replayed batch repeats them;
    decisions and ages computed over the whole batch at once."""
    score = np.asarray(scores, dtype=np.float64)
    ages = np.maximum(0, now_ms - np.asarray(rows.event_times, dtype=np.int64))
    ids = [stream_prediction_id(e, model_name, v) for e, v in zip(rows.event_ids, versions)]
    return StreamScored(
        rows,
        ids,
        score.tolist(),
        (score >= threshold).tolist(),
        list(versions),
        ages.tolist(),
        model_name,
        threshold,
        feature_set_version,
    )


def stream_prediction_id(event_id: str, model_name: str, model_version: str) -> str:
    """Stable across replays: the same event scored by the same model version always gets the same id.
    It is uuid5(namespace, "event\0model\0version") in hex, computed without the uuid module's overhead."""
    digest = bytearray(hashlib.sha1(_IDS + f"{event_id}\x00{model_name}\x00{model_version}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()
