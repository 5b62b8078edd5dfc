"""The events subject from close to report: the newest version's events reference, a valid DriftReport keyed by its
subject, insufficient data without a reference, and a failed write failing the loop's ack."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import OutRecord
from kestrel.drift_monitor.assess import DriftPolicy
from kestrel.drift_monitor.event_sink import EventReportSink
from kestrel.drift_monitor.event_windows import EventClose
from kestrel.drift_monitor.record import event_report_id, report_id
from kestrel.drift_monitor.references import EventReferences
from kestrel.drift_monitor.sink import publisher
from kestrel.drift_monitor.windows import Close
from kestrel.model.artifact import ModelArtifact, save
from kestrel.model.events import Counts, add, event_reference, keys
from kestrel.model.network import Network
from kestrel.model.reference import compute_reference

SCHEMA = fastavro.parse_schema(json.loads((Path(__file__).parents[3] / "schemas" / "drift_report.avsc").read_text()))
NAMES = ("amount",)
NET = Network(np.zeros(1), np.ones(1), np.zeros(1, bool), ((np.ones((1, 1)), np.zeros(1)),))


def payments(n: int, online: float) -> list[dict[str, Any]]:
    rng = np.random.default_rng(int(online * 100) + n)
    return [
        {
            "channel": "ecommerce" if rng.random() < online else "pos",
            "country": "DE",
            "merchant_category": "5411",
            "currency": "EUR",
            "amount": float(rng.lognormal(3, 1)),
        }
        for _ in range(n)
    ]


def counts(events: list[dict[str, Any]]) -> Counts:
    out: Counts = {}
    for e in events:
        add(out, keys(e))
    return out


def version(root: Path, number: int, with_events: bool) -> None:
    X = np.random.default_rng(number).normal(size=(100, 1))
    reference = compute_reference(X, NET.predict(X), NAMES)
    if with_events:
        reference = replace(reference, events=event_reference(payments(5000, 0.2)))
    save(ModelArtifact("fraud", number, "t.v1", NAMES, NET, {}, {}, reference, "2026-12-01T00:00:00Z"), root)


class Database:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.fail = False

    async def upsert(self, report: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("postgres down")
        self.written.append(report)


class Out:
    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    async def send(self, record: OutRecord) -> None:
        self.sent.append(record)


def sink(root: Path, db: Database, out: Out) -> EventReportSink:
    publish = publisher(lambda r: json.dumps(r).encode(), "reports")
    return EventReportSink(EventReferences(root, "fraud"), db, publish, out, DriftPolicy(), "fraud")  # type: ignore[arg-type]


def event_close(start: int, online: float) -> EventClose:
    return EventClose(Close("events", "", start, start + 60_000, 2000, 3, {0: 9}, 0), counts(payments(2000, online)))


async def test_a_shifted_window_is_reported_against_the_newest_version_with_events(tmp_path: Path) -> None:
    version(tmp_path, 1, with_events=True)
    version(tmp_path, 2, with_events=False)  # trained from logged vectors: version 1's events stand in
    db, out = Database(), Out()
    stationary = await sink(tmp_path, db, out).report(event_close(0, 0.2))
    shifted = await sink(tmp_path, db, out).report(event_close(60_000, 0.5))
    for report in (stationary, shifted):
        assert fastavro.validate(report, SCHEMA, strict=True)
        assert (report["subject"], report["model_name"], report["model_version"]) == ("events", "fraud", "1")
    assert (stationary["status"], shifted["status"], shifted["drifted_features"]) == ("ok", "drift", ["channel"])
    assert (shifted["reference_size"], shifted["window_size"], shifted["late_predictions"]) == (5000, 2000, 3)
    channel = shifted["metrics"][0]
    assert channel["categories"] == ["ecommerce", "pos"] and channel["test"] == "chi2"
    assert shifted["performance"] is None and db.written == [stationary, shifted]
    assert [r.key for r in out.sent] == [b"events", b"events"]
    assert shifted["report_id"] == event_report_id("fraud", 60_000) != report_id("fraud", "1", 60_000)


async def test_without_any_events_reference_the_window_is_insufficient_data(tmp_path: Path) -> None:
    version(tmp_path, 1, with_events=False)
    report = await sink(tmp_path, Database(), Out()).report(event_close(0, 0.5))
    assert fastavro.validate(report, SCHEMA, strict=True)
    assert (report["status"], report["metrics"], report["window_size"], report["model_version"]) == (
        "insufficient_data",
        [],
        2000,
        None,
    )


async def test_a_failed_write_fails_the_ack_so_the_loop_closes_the_window_again(tmp_path: Path) -> None:
    version(tmp_path, 1, with_events=True)
    db, out = Database(), Out()
    db.fail = True
    ack = await sink(tmp_path, db, out).produce_batch([OutRecord("closes", event_close(0, 0.2).to_json(), b"events")])
    await ack.wait(5)
    with pytest.raises(UnavailableError):
        ack.raise_for_failures()
    assert out.sent == []
