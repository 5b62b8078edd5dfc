"""Feature definitions: what each feature is, declared once and validated; no I/O here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kestrel.common.errors import KestrelError


class FeatureDefinitionError(KestrelError, ValueError):
    """A feature set is malformed, or changed without a version bump."""


DTYPES = ("float", "int", "bool")

WINDOWED = frozenset(
    {
        "count",
        "sum",
        "mean",
        "std",
        "max",
        "min",
        "distinct",
        "seconds_since_previous",
        "ratio_to_mean",
        "zscore",
        "is_new",
    }
)
"""Aggregations over the entity's events in a window ending at the event (need window_s)."""
POINT = frozenset({"value", "hour_of_day"})
"""Aggregations of the event alone (window_s must be absent)."""
NUMERIC_SOURCE = frozenset({"value", "sum", "mean", "std", "max", "min", "ratio_to_mean", "zscore"})
"""Aggregations that read a numeric field of the event."""
CATEGORICAL_SOURCE = frozenset({"distinct", "is_new"})
"""Aggregations that read a string field of the event."""
TIME_SOURCE = frozenset({"hour_of_day", "seconds_since_previous"})
"""Aggregations that read the event time."""
EVENT_ID = "event_id"
"""Event field with the producer's id of the event (every event schema has it): a retry re-sends the same id."""
FLAT_SPREAD = 1e-9
"""zscore: a prior std at or below FLAT_SPREAD x max(1, |prior mean|) counts as no spread (the default
applies), so float noise (1e-17) on equal amounts cannot become huge z-scores."""


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its name in the vector, its type and default, and how it is computed from events."""

    name: str
    dtype: str
    default: float
    source: str
    """Event field it reads (the time field for time aggregations; any field for `count`)."""
    aggregation: str
    window_s: int | None = None
    """Length of the window ending at the event's time, in seconds; None for point features."""
    description: str = ""

    def __post_init__(self) -> None:
        problems = _spec_problems(self)
        if problems:
            raise FeatureDefinitionError(f"feature {self.name!r}: {'; '.join(problems)}")

    def computation(self) -> dict[str, Any]:
        """Everything that changes the computed value (the description does not)."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "default": float(self.default),
            "source": self.source,
            "aggregation": self.aggregation,
            "window_s": self.window_s,
        }


def _spec_problems(spec: FeatureSpec) -> list[str]:
    problems = []
    if not spec.name.isidentifier():
        problems.append("name must be an identifier (letters, digits, underscores)")
    if spec.dtype not in DTYPES:
        problems.append(f"dtype must be one of {', '.join(DTYPES)}")
    if spec.aggregation not in WINDOWED | POINT:
        problems.append(f"unknown aggregation {spec.aggregation!r}; known: {', '.join(sorted(WINDOWED | POINT))}")
    elif spec.aggregation in WINDOWED and (spec.window_s is None or spec.window_s <= 0):
        problems.append(f"aggregation {spec.aggregation} needs a positive window_s")
    elif spec.aggregation in POINT and spec.window_s is not None:
        problems.append(f"aggregation {spec.aggregation} takes no window_s")
    if not isinstance(spec.default, (int, float)) or spec.default != spec.default:
        problems.append("default must be a number (not NaN)")
    return problems


@dataclass(frozen=True)
class FeatureSet:
    """An ordered set of features: the order of `features` is the vector order everywhere."""

    name: str
    version: int
    features: tuple[FeatureSpec, ...]
    entity: str = "entity_id"
    """Event field the features are keyed by."""
    time: str = "event_time"
    """Event field holding the event time (int milliseconds since the epoch)."""
    allowed_lateness_s: int = 300
    """How far behind the entity's newest event time an event may be and still update the windows."""
    max_events_per_entity: int = 4096
    """Bound on the events kept per entity; beyond it the oldest are forgotten (windows then undercount)."""
    fingerprints: Mapping[int, str] = field(default_factory=dict, hash=False, compare=False)
    """Released versions and the fingerprints of their definitions (the lock that forces version bumps)."""

    def __post_init__(self) -> None:
        problems = _set_problems(self)
        if problems:
            raise FeatureDefinitionError(f"feature set {self.name!r}: {'; '.join(problems)}")

    @property
    def version_id(self) -> str:
        """What vectors carry as feature_set_version, e.g. `card.v1`."""
        return f"{self.name}.v{self.version}"

    @cached_property
    def names(self) -> list[str]:
        """Feature names in vector order: the order inference, training and drift use."""
        return [f.name for f in self.features]

    @cached_property
    def defaults(self) -> list[float]:
        """Default values in vector order (what a missing entity gets)."""
        return [float(f.default) for f in self.features]

    @cached_property
    def index(self) -> dict[str, int]:
        """Position of each feature in the vector."""
        return {name: i for i, name in enumerate(self.names)}

    @cached_property
    def max_window_s(self) -> int:
        return max((f.window_s or 0 for f in self.features), default=0)

    @cached_property
    def numeric_sources(self) -> list[str]:
        """Event fields the windowed numeric aggregations read, sorted: the stream state's numeric columns."""
        return sorted({f.source for f in self.features if f.aggregation in NUMERIC_SOURCE})

    @cached_property
    def categorical_sources(self) -> list[str]:
        """Event fields distinct and is_new read, sorted: the stream state's categorical columns."""
        return sorted({f.source for f in self.features if f.aggregation in CATEGORICAL_SOURCE})

    def __getitem__(self, name: str) -> FeatureSpec:
        return self.features[self.index[name]]

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of every setting that changes a computed value, in vector order."""
        doc = {
            "entity": self.entity,
            "time": self.time,
            "allowed_lateness_s": self.allowed_lateness_s,
            "max_events_per_entity": self.max_events_per_entity,
            "features": [f.computation() for f in self.features],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def check_locked(self) -> None:
        """Fail unless this version's recorded fingerprint matches the definitions (so edits bump the version)."""
        actual = self.fingerprint()
        recorded = self.fingerprints.get(self.version)
        if recorded == actual:
            return
        if recorded is None:
            raise FeatureDefinitionError(
                f"feature set {self.name!r} v{self.version} has no recorded fingerprint: "
                f"add `{self.version}: {actual}` under fingerprints"
            )
        raise FeatureDefinitionError(
            f"feature set {self.name!r} changed but v{self.version} was released as {recorded}: "
            f"set `version: {max(self.fingerprints) + 1}` and add `{max(self.fingerprints) + 1}: {actual}` "
            f"under fingerprints (never edit a released line)"
        )


def _set_problems(fs: FeatureSet) -> list[str]:
    problems = []
    names = [f.name for f in fs.features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if not fs.features:
        problems.append("declares no features")
    if duplicates:
        problems.append(f"features declared twice: {', '.join(duplicates)}")
    if fs.version < 1:
        problems.append("version must be >= 1")
    if fs.allowed_lateness_s < 0 or fs.max_events_per_entity < 1:
        problems.append("allowed_lateness_s must be >= 0 and max_events_per_entity >= 1")
    seen: dict[str, int] = {}
    for version, fp in fs.fingerprints.items():
        if fp in seen:
            problems.append(
                f"versions {seen[fp]} and {version} share fingerprint {fp}: a version bump "
                f"without a change, or a released line edited"
            )
        seen[fp] = version
    return problems


def parse_feature_set(document: Mapping[str, Any]) -> FeatureSet:
    """Build a FeatureSet from its parsed YAML/JSON document."""
    if not isinstance(document, Mapping):
        raise FeatureDefinitionError("a feature set document must be a mapping")
    try:
        features = tuple(_feature(entry) for entry in _list(document.get("features")))
        options = {
            k: document[k] for k in ("entity", "time", "allowed_lateness_s", "max_events_per_entity") if k in document
        }
        fingerprints = {int(v): str(fp) for v, fp in (document.get("fingerprints") or {}).items()}
        return FeatureSet(
            str(document["name"]), int(document["version"]), features, fingerprints=fingerprints, **options
        )
    except KeyError as exc:
        raise FeatureDefinitionError(f"feature set document lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FeatureDefinitionError):
            raise
        raise FeatureDefinitionError(f"bad feature set document: {exc}") from exc


def _list(value: Any) -> Sequence[Any]:
    if not isinstance(value, list):
        raise FeatureDefinitionError("`features:` must be a list")
    return value


def _feature(entry: Any) -> FeatureSpec:
    if not isinstance(entry, Mapping):
        raise FeatureDefinitionError(f"feature entry must be a mapping, got {entry!r}")
    unknown = set(entry) - {"name", "dtype", "default", "source", "aggregation", "window_s", "description"}
    if unknown:
        raise FeatureDefinitionError(f"feature {entry.get('name', '?')!r}: unknown keys {sorted(unknown)}")
    window = entry.get("window_s")
    return FeatureSpec(
        name=str(entry["name"]),
        dtype=str(entry["dtype"]),
        default=float(entry["default"]),
        source=str(entry["source"]),
        aggregation=str(entry["aggregation"]),
        window_s=None if window is None else int(window),
        description=str(entry.get("description", "")).strip(),
    )
