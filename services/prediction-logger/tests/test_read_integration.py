"""The read API over rows the logger stored: labelled predictions, a score window, a point-in-time training set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from kestrel.prediction_logger import read
from kestrel.prediction_logger.rows import prepare
from kestrel.prediction_logger.store import PostgresStore

pytestmark = pytest.mark.integration


async def test_reads_what_was_stored(postgres: Any, stream: Any) -> None:
    predictions = stream.predictions(40, seed=9)
    model = f"m-{stream.run}"  # a model name of this test's own
    names = stream.feature_names["t.v1"]
    for i, p in enumerate(predictions):
        p["model_name"], p["model_version"] = model, "7"
        p["threshold"] = 0.35 if i % 4 else 0.5  # the threshold changed for a quarter of them
    for p in predictions[::2]:  # logged before packing: the features by name, no feature_values
        p["features"], p["feature_values"] = dict(zip(names, p["feature_values"])), []
    labels = stream.labels(predictions[:30])
    late = dict(labels[0], label=1 - labels[0]["label"], label_time=labels[0]["label_time"] + 3_600_000)
    store = PostgresStore(postgres.dsn, 10)
    await store.start()
    rows = prepare([SimpleNamespace()] * 40, predictions, "predictions")
    prepare([SimpleNamespace()] * 31, [*labels, late], "labels", rows)
    await store.write(rows)
    await store.stop()
    start, end = datetime.now(UTC) - timedelta(days=4), datetime.now(UTC) + timedelta(days=1)
    conn = await asyncpg.connect(postgres.dsn)
    try:
        labelled = await read.labelled_predictions(conn, model, "7", start, end)
        assert len(labelled) == 30
        corrected = next(x for x in labelled if x.event_id == late["event_id"])
        assert corrected.label == late["label"]  # the newest label wins
        window = await read.score_window(conn, model, "7", start, end, stream.feature_names)
        assert len(window.ids) == 40 and window.names == names
        by_id = {p["prediction_id"]: p for p in predictions}
        assert window.column == [by_id[i]["score"] for i in window.ids]
        logged = [by_id[i]["feature_values"] or [by_id[i]["features"][n] for n in names] for i in window.ids]
        assert window.features == logged  # packed and old rows alike
        assert await read.window_threshold(conn, model, "7", start, end) == 0.35  # the one most were made at
        assert await read.window_threshold(conn, model, "8", start, end) is None
        before_late = datetime.fromtimestamp(late["label_time"] / 1000 - 1, UTC)
        training, versions = await read.training_set(conn, model, start, end, before_late, stream.feature_names)
        assert versions == ["t.v1"] and len(training.ids) == 30
        first = training.ids.index(
            by_id[next(i for i in by_id if by_id[i]["event_id"] == late["event_id"])]["prediction_id"]
        )
        assert training.column[first] == labels[0]["label"]  # the correction was not known yet
    finally:
        await conn.close()
