"""Fixtures of the retrain-trigger's integration tests: a drifted week of simulated payments, logged in the
prediction log as the checked-in champion scored them (with labels), and that champion under another name."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from kestrel.featureset import load_feature_set, offline
from kestrel.model import load
from kestrel.prediction_logger.rows import prepare
from kestrel.prediction_logger.store import PostgresStore
from kestrel.simulator.generator import Generator, GeneratorConfig
from kestrel.simulator.population import natural_rate

ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = ROOT / "infra" / "triton" / "models" / "kestrel_fraud" / "1"
CARD = load_feature_set("card")
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


@pytest.fixture(scope="session")
def wave() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """40,000 payments of the new-country wave (the champion's PR-AUC drops; a retrain recovers it), and labels."""
    return week("new-country-wave", 40_000, seed=21)


@pytest.fixture
def prediction_log() -> Any:
    """`await prediction_log(dsn, model, events, labels)`: logged as the stream scorer would have; returns rows."""
    return log_predictions


@pytest.fixture
def champion() -> Any:
    """`champion(folder, model)`: the checked-in version 1 copied under `folder` as model `model`."""
    return champion_copy
