"""`kestrel-retrain timeline` on a real PostgreSQL: the prediction log, drift reports and the audit trail in,
the timeline and the page out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).with_name("kestrel-retrain"))
HOUR = 3_600_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_timeline_reads_the_loop_back_from_postgres(postgres: Any, tmp_path: Path) -> None:
    model = f"m-{uuid4().hex[:8]}"
    start = int(time.time() * 1000) // HOUR * HOUR - 3 * HOUR
    conn = await asyncpg.connect(postgres.dsn)
    try:
        rows = []
        for hour, version in ((0, "1"), (1, "1"), (2, "2")):
            for i in range(250):
                fraud = i % 5 == 0
                score = (0.9 if fraud else 0.1) if hour != 1 else (0.1 if fraud else 0.9)  # hour 1: drifted, bad
                rows.append((f"{model}-{hour}-{i}", start + hour * HOUR + i * 1000, version, score, fraud))
        await conn.executemany(
            """INSERT INTO predictions (prediction_id, event_id, entity_id, event_time, model_name, model_version,
               score, decision, features, feature_values, feature_set_version, source, predicted_at)
               VALUES ($1, $1, 'card', $2, $3, $4, $5::float8, $5::float8 >= 0.5, NULL, '{}', 'card.v1', 'stream',
                       $2)""",
            [(pid, _at(at), model, version, score) for pid, at, version, score, _ in rows],
        )
        await conn.executemany(
            "INSERT INTO labels (event_id, entity_id, label, label_time, source) VALUES ($1, 'card', $2, $3, 'test')",
            [(pid, int(fraud), _at(at + 60_000)) for pid, at, _, _, fraud in rows],
        )
        metrics = [{"name": "amount", "drifted": True}, {"name": "hour", "drifted": False}]
        await conn.execute(
            """INSERT INTO drift_reports (report_id, created_at, subject, drifted, payload, model_name, model_version,
               window_start, window_end, status) VALUES ($1, $2, 'predictions', true, $3, $4, '1', $5, $2, 'drift')""",
            f"{model}-r", _at(start + 2 * HOUR), json.dumps({"metrics": metrics}), model, _at(start + HOUR),
        )  # fmt: skip
        channel = [{"name": "channel", "drifted": True}]  # an earlier events-subject report: not the model's inputs
        await conn.execute(
            """INSERT INTO drift_reports (report_id, created_at, subject, drifted, payload, model_name, model_version,
               window_start, window_end, status) VALUES ($1, $2, 'events', true, $3, $4, '1', $5, $2, 'drift')""",
            f"{model}-e", _at(start + HOUR), json.dumps({"metrics": channel}), model, _at(start),
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO model_audit (model_name, version, action, alias, reason, actor, at)
               VALUES ($1, '2', 'promoted', 'champion', 'shadow held', 'test', $2)""",
            model, _at(start + 2 * HOUR + 60_000),
        )  # fmt: skip
    finally:
        await conn.close()

    page = tmp_path / "loop.html"
    env = {**os.environ, "KESTREL_RETRAIN_TRIGGER_POSTGRES_DSN": postgres.dsn}
    done = subprocess.run(
        [SCRIPT, "timeline", "--model", model, "--since-hours", "5", "-o", str(page)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("drift reported on version 1, 50% of features")
    assert lines[1].endswith("promoted champion version 2: shadow held") and lines[2] == f"page: {page}"
    html = page.read_text()
    assert html.count("<svg") == 3 and "promoted champion version 2" in html


def test_timeline_without_postgres_is_one_line() -> None:
    env = {**os.environ, "KESTREL_RETRAIN_TRIGGER_POSTGRES_DSN": "postgresql://kestrel@127.0.0.1:9/kestrel"}
    done = subprocess.run([SCRIPT, "timeline", "--model", "m"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("kestrel-retrain: postgresql not reachable")
    assert len(done.stderr.strip().splitlines()) == 1
