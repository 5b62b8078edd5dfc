"""One retraining run on a real PostgreSQL: the prediction log of a drifted week in, a gated challenger out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import numpy as np
import pytest

from kestrel.featureset import load_feature_set, offline
from kestrel.model import load
from kestrel.prediction_logger.rows import prepare
from kestrel.prediction_logger.store import PostgresStore
from kestrel.registry import CHAMPION, REJECTED
from kestrel.registry.artifacts import describe
from kestrel.registry.store import Registry
from kestrel.retrain_trigger.job import RetrainSettings, retrain
from kestrel.retrain_trigger.trainset import NotEnoughData
from kestrel.simulator.generator import Generator, GeneratorConfig
from kestrel.simulator.population import natural_rate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = ROOT / "infra" / "triton" / "models" / "kestrel_fraud" / "1"
CARD = load_feature_set("card")
BIN = Path(sys.executable).parent
CARDS = 3000


def week(scenario: str, events: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Simulated traffic ending now (event times within the last days), and its labels."""
    rate = natural_rate(CARDS)
    span_ms = int(events * 1000 / rate)
    start = int(time.time() * 1000) - span_ms - 60_000
    generator = Generator(GeneratorConfig(cards=CARDS, seed=seed, run_id=f"r{seed}", scenario=scenario), start)
    records, labels = [], []
    for step in range(1, events // 1000 + 1):
        batch = generator.step(1000, start + step * span_ms * 1000 // events)
        records += batch.events
        labels += batch.labels
    return records, labels + generator.drain_labels()


async def log_predictions(dsn: str, model: str, events: list[dict[str, Any]], labels: list[dict[str, Any]]) -> int:
    """What the stream scorer and the logger would have stored: each event's exact vector, scored by v1."""
    vectors = offline.compute(events, CARD)
    champion = load(CHECKED_IN)
    kept = [(e, v) for e, v in zip(events, vectors) if v is not None]
    scores = champion.predict(np.array([v for _, v in kept]))
    now = int(time.time() * 1000)
    predictions = [
        {
            "prediction_id": f"{model}-{e['event_id']}",
            "event_id": e["event_id"],
            "entity_id": e["entity_id"],
            "event_time": e["event_time"],
            "model_name": model,
            "model_version": "1",
            "score": float(s),
            "threshold": 0.5,
            "decision": bool(s >= 0.5),
            "feature_set_version": CARD.version_id,
            "features": {},
            "feature_values": list(v),
            "features_age_ms": 0,
            "degraded": False,
            "flags": [],
            "latency_us": 100,
            "source": "stream",
            "predicted_at": now,
        }
        for (e, v), s in zip(kept, scores)
    ]
    store = PostgresStore(dsn, 10)
    await store.start()
    try:
        for i in range(0, len(predictions), 5000):
            chunk = predictions[i : i + 5000]
            await store.write(prepare([SimpleNamespace()] * len(chunk), chunk, "predictions"))
        rows = [dict(label, label_time=now - 1000) for label in labels]
        await store.write(prepare([SimpleNamespace()] * len(rows), rows, "labels"))
    finally:
        await store.stop()
    return len(predictions)


def champion_copy(tmp_path: Path, model: str) -> Path:
    folder = tmp_path / "champion" / model / "1"
    shutil.copytree(CHECKED_IN, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {"model_name": model}))
    return folder


@pytest.fixture(scope="module")
def wave() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return week("new-country-wave", 40_000, seed=21)


async def test_a_drifted_week_trains_a_challenger_that_beats_the_champion(postgres, tmp_path, wave):
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    logged = await log_predictions(postgres.dsn, model, *wave)
    conn = await asyncpg.connect(postgres.dsn)
    try:
        registry = Registry(conn)
        await registry.register(describe(champion_copy(tmp_path, model)), actor="ci", reason="seed")
        await registry.promote(model, "1", actor="ci", reason="seed")
        settings = RetrainSettings(postgres_dsn=postgres.dsn, artifacts_dir=tmp_path / "models")
        window = (datetime.now(UTC) - timedelta(days=30), datetime.now(UTC))
        outcome = await retrain(conn, registry, settings, model, window, "ci", "FeatureDrift")
        assert outcome["passed"], outcome["reasons"]
        assert outcome["version"] == "2" and outcome["champion_version"] == "1"
        assert outcome["challenger"]["pr_auc"] >= outcome["champion"]["pr_auc"] + 0.005
        assert outcome["rows"] <= logged and outcome["positives"] >= 20
        challenger = await registry.get(model, "2")
        assert challenger.parent_version == "1" and challenger.status == "registered"
        assert Path(outcome["artifact"], "weights.npz").exists()
        assert await registry.alias(model, CHAMPION) == "1"  # the job gates; rollout is the trigger's
        evaluated = [e for e in await registry.history(model, "2") if e.action == "evaluated"]
        assert evaluated and evaluated[0].details["champion_version"] == "1"
        strict = RetrainSettings(postgres_dsn=postgres.dsn, artifacts_dir=tmp_path / "models", margin=0.5)
        refused = await retrain(conn, registry, strict, model, window, "ci", "again")
        assert not refused["passed"] and refused["version"] == "3"
        assert (await registry.get(model, "3")).status == REJECTED
        rejected = (await registry.history(model, "3"))[-1]
        assert rejected.action == "rejected" and "pr_auc" in rejected.reason and "fails" in rejected.reason
    finally:
        await conn.close()


async def test_too_little_data_is_said_plainly(postgres, tmp_path):
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres.dsn)
    try:
        settings = RetrainSettings(postgres_dsn=postgres.dsn, artifacts_dir=tmp_path)
        window = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC))
        with pytest.raises(NotEnoughData, match="no labelled stream predictions"):
            await retrain(conn, Registry(conn), settings, model, window, "ci", "test")
    finally:
        await conn.close()
    env = {
        "PATH": str(BIN),
        "KESTREL_RETRAIN_POSTGRES_DSN": postgres.dsn,
        "KESTREL_RETRAIN_ARTIFACTS_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [BIN / "kestrel-retrain-job", "--model", model], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1 and done.stderr.strip().startswith("kestrel-retrain-job: no labelled")
