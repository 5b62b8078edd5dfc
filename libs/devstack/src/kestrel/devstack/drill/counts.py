"""From what the drill sent and read back to one tally per topic and store (pure)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kestrel.devstack.drill.reconcile import Tally, fingerprint, tally

VOLATILE = {
    "features": {"computed_at"},
    "predictions": {"predicted_at", "latency_us", "features_age_ms"},
}
"""Fields a faithful replay of the same input may change: wall-clock times and latencies."""


@dataclass
class ReadBack:
    """Everything the drill read after the lag drained."""

    events: list[dict[str, Any]] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    logged: list[tuple[str, Hashable]] = field(default_factory=list)
    """(event id, row content) of each stream prediction row in PostgreSQL."""
    log_members: list[tuple[str, Hashable]] = field(default_factory=list)
    """(event id, content) of each member of the cards' Redis event logs."""
    vectors: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Card -> (event time, event id) of its Redis vector."""
    complete_from: dict[str, int] = field(default_factory=dict)
    """Card -> the time after which its Redis event log holds every event."""


def tallies(sent: Mapping[str, tuple[str, int]], newest: Mapping[str, tuple[int, str]], got: ReadBack) -> list[Tally]:
    """`sent`: event id -> (card, event time) acknowledged; `newest`: card -> the (time, id) it must end on."""
    ids = set(sent)
    return [
        tally("events topic", ids, _keyed(got.events, "event_id")),
        tally("features topic", ids, _keyed(got.features, "event_id", VOLATILE["features"])),
        tally("predictions topic", ids, _keyed(_stream(got.predictions), "event_id", VOLATILE["predictions"])),
        tally("PostgreSQL predictions", ids, got.logged),
        tally("Redis vectors", set(newest), [(c, v) for c, v in got.vectors.items() if newest.get(c) == v]),
        _event_logs(sent, got),
        tally("alerts topic", None, _keyed(got.alerts, "alert_id")),
        tally("lifecycle topic", None, [(_step(r), fingerprint(r, {"at"})) for r in got.lifecycle]),
    ]


def _keyed(records: Sequence[dict[str, Any]], key: str, volatile: set[str] | None = None) -> list[tuple[str, str]]:
    return [(r[key], fingerprint(r, volatile or ())) for r in records]


def _stream(predictions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in predictions if p.get("source") == "stream"]


def _step(record: Mapping[str, Any]) -> str:
    """A lifecycle event's identity: one model version reaches each stage once."""
    return f"{record['model_name']}/{record['version']}/{record['stage']}"


def _event_logs(sent: Mapping[str, tuple[str, int]], got: ReadBack) -> Tally:
    """Each event must be in its card's log once, unless the log let it go (older than the log keeps)."""
    kept = {e for e, (card, at) in sent.items() if at > got.complete_from.get(card, 0)}
    members = [(e, content) for e, content in got.log_members if e in kept or e not in sent]
    return tally("Redis event logs", kept, members)
