"""The report sink with fake dependencies: what a close becomes when the logger is late, the reference missing,
or the rows unreadable, and that a failed report fails the loop's ack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import OutRecord
from kestrel.drift_monitor.assess import DriftPolicy, ModelReference, reference
from kestrel.drift_monitor.references import MissingReference
from kestrel.drift_monitor.sink import ReportSink
from kestrel.drift_monitor.windows import Close
from kestrel.model.reference import compute_reference
from kestrel.prediction_logger.read import LabelledPrediction, Matrix

CLOSE = Close("fraud", "1", 0, 60_000, 300, 2, {0: 5}, 70_000)
RNG = np.random.default_rng(3)
STATS = compute_reference(RNG.normal(size=(2000, 2)), RNG.uniform(size=2000), ("a", "b"))
REF = reference(STATS, ("numeric",) * 2, "t.v1")


class Progress:
    def __init__(self, caught_up: bool) -> None:
        self.caught_up = caught_up
        self.asked: list[Mapping[int, int]] = []

    async def wait(self, wanted: Mapping[int, int], timeout_s: float) -> bool:
        self.asked.append(wanted)
        return self.caught_up


class References:
    def __init__(self, ref: ModelReference | None) -> None:
        self.ref = ref

    async def get(self, model_name: str, model_version: str) -> ModelReference:
        if self.ref is None:
            raise MissingReference("no artifact")
        return self.ref


class Database:
    def __init__(self, rows: Matrix | Exception) -> None:
        self.rows, self.written, self.fail = rows, [], False

    async def window(self, *args: Any) -> Matrix:
        if isinstance(self.rows, Exception):
            raise self.rows
        return self.rows

    async def labelled(self, *args: Any) -> list[LabelledPrediction]:
        assert not isinstance(self.rows, Exception)
        return [LabelledPrediction(i, "e", "c", None, s, False, int(s > 0.9), None) for i, s in self.scores()]  # type: ignore[arg-type]

    def scores(self) -> list[tuple[str, float]]:
        assert not isinstance(self.rows, Exception)
        return list(zip(self.rows.ids, self.rows.column))

    async def threshold(self, *args: Any) -> float | None:
        return 0.6

    async def upsert(self, report: Mapping[str, Any]) -> None:
        if self.fail:
            raise UnavailableError("postgres down")
        self.written.append(dict(report))


class Out:
    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    async def send(self, record: OutRecord) -> None:
        self.sent.append(record)


def rows(n: int) -> Matrix:
    values = RNG.normal(size=(n, 2)).tolist()
    return Matrix([f"p{i}" for i in range(n)], ["a", "b"], values, RNG.uniform(size=n).tolist())


def sink(progress: Progress, ref: ModelReference | None, db: Database, out: Out) -> ReportSink:
    publish = lambda report: OutRecord("reports", report["report_id"].encode(), b"predictions")  # noqa: E731
    return ReportSink(progress, References(ref), db, publish, out, DriftPolicy(), 1.0)  # type: ignore[arg-type]


async def test_a_close_is_written_then_published_after_the_logger_caught_up() -> None:
    progress, db, out = Progress(True), Database(rows(600)), Out()
    report = await sink(progress, REF, db, out).report(CLOSE)
    assert progress.asked == [{0: 5}]
    assert db.written == [report] and [r.value for r in out.sent] == [report["report_id"].encode()]
    assert (report["status"], report["window_size"], report["late_predictions"]) == ("ok", 600, 2)
    assert (report["performance"]["labelled"], report["performance"]["threshold"]) == (600, 0.6)


async def test_a_logger_that_never_caught_up_is_said_in_the_report() -> None:
    report = await sink(Progress(False), REF, Database(rows(300)), Out()).report(CLOSE)
    assert report["log_complete"] is False


@pytest.mark.parametrize("ref, data", [(None, rows(10)), (REF, ValueError("no feature names of x.v9"))])
async def test_no_reference_or_unreadable_rows_report_insufficient_data(ref: Any, data: Any) -> None:
    report = await sink(Progress(True), ref, Database(data), Out()).report(CLOSE)
    assert (report["status"], report["metrics"], report["window_size"]) == ("insufficient_data", [], 300)


async def test_a_failed_report_fails_the_ack_the_loop_waits_on() -> None:
    db, out = Database(rows(300)), Out()
    db.fail = True
    ack = await sink(Progress(True), REF, db, out).produce_batch([OutRecord("closes", CLOSE.to_json())])
    assert await ack.wait()
    with pytest.raises(UnavailableError, match="postgres down"):
        ack.raise_for_failures()
    assert out.sent == []
