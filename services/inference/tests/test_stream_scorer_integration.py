"""The stream scorer on real Kafka and tritonserver: every vector scored once per model version, bad ones
dead-lettered, and a Triton outage pauses scoring without losing or committing anything."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.kafka.consumer import BatchConsumer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.devstack.paths import model_repository
from kestrel.devstack.triton import TritonServer
from kestrel.featureset.records import record_features
from kestrel.inference.core import stream_prediction_id
from kestrel.inference.service import SCORER

from .support import CARD, MODEL, now_ms, settings

pytestmark = pytest.mark.integration


def vectors(n: int, seed: int, start: int = 0) -> list[dict[str, Any]]:
    """Vectors as the features service writes them: packed."""
    return [dict(v, features={}, feature_values=record_features(v, CARD)) for v in named_vectors(n, seed, start)]


def by_name(vector: dict[str, Any]) -> dict[str, Any]:
    return dict(vector, features=dict(zip(CARD.names, record_features(vector, CARD))), feature_values=[])


def named_vectors(n: int, seed: int, start: int = 0) -> list[dict[str, Any]]:
    """Vectors as writers before packing wrote them: features by name."""
    rng = np.random.default_rng(seed)
    t = now_ms() - 10_000
    return [
        {
            "entity_id": f"card-{rng.integers(50)}",
            "event_id": f"e-{seed}-{start + i}",
            "event_time": t + i,
            "feature_set_version": CARD.version_id,
            "computed_at": t + i,
            "features": dict(zip(CARD.names, rng.gamma(2.0, 20.0, len(CARD.names)).tolist())),
        }
        for i in range(n)
    ]


async def produce(bootstrap: str, topic: str, records: list[dict[str, Any]], raw: list[bytes] = ()) -> None:
    serde = serde_for_topic(FileSchemaRegistry(), topic, "feature_vector")
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    try:
        out = [OutRecord(topic, v, r["entity_id"].encode()) for v, r in zip(serde.serialize_many(records), records)]
        await producer.send_many([*out, *(OutRecord(topic, b, b"bad") for b in raw)])
    finally:
        await producer.stop()


def expected_scores(artifact, records: list[dict[str, Any]]) -> dict[str, float]:
    matrix = np.array([record_features(r, CARD) for r in records], dtype=np.float32)
    return {r["event_id"]: float(s) for r, s in zip(records, artifact.predict(matrix))}


async def test_scores_every_vector_and_dead_letters_the_bad_ones(kafka, redis_server, fraud_model, topics, artifact):
    good = [*vectors(3000, seed=1), *named_vectors(20, seed=3, start=3000)]  # packed, and some of older writers
    other_version = dict(good[0], event_id="e-v2", feature_set_version="card.v2")
    missing = by_name(dict(good[1], event_id="e-missing"))
    missing["features"] = {"amount": 1.0}
    app = SCORER.app(settings(topics, redis_server.url, fraud_model.grpc_url, max_batch=1000, triton_max_rows=256))
    await app.start()
    try:
        short = dict(good[2], event_id="e-short", feature_values=[1.0])
        bad = [other_version, missing, short]
        await produce(kafka.bootstrap, topics.features, [*good, *bad], raw=[b"\x00garbage"])
        predictions = await topics.read(topics.predictions, len(good))
        dead = await topics.read(topics.dead_letters, 4)
    finally:
        await app.stop()
    assert sorted(p["event_id"] for p in predictions) == sorted(v["event_id"] for v in good)
    expected = expected_scores(artifact, good)
    for p in predictions:
        assert p["score"] == pytest.approx(expected[p["event_id"]], abs=1e-5)
        assert p["source"] == "stream" and p["model_name"] == MODEL and p["model_version"] == "1"
        assert p["prediction_id"] == stream_prediction_id(p["event_id"], MODEL, "1")
        assert p["decision"] == (p["score"] >= 0.5) and not p["degraded"]
    reasons = sorted(d["reason"] for d in dead)
    assert any("card.v2" in r for r in reasons) and any("missing" in r for r in reasons) and len(reasons) == 4
    assert any(r == f"1 feature values, {CARD.version_id} has {len(CARD.names)}" for r in reasons)


async def test_triton_outage_pauses_scoring_and_loses_nothing(kafka, redis_server, topics, artifact, tmp_path):
    triton = TritonServer(tmp_path / "triton", model_repository(), load_models=[MODEL])
    triton.die_with_parent = True
    await triton.start()
    app = SCORER.app(
        settings(
            topics,
            redis_server.url,
            triton.grpc_url,
            max_batch=500,
            breaker_failures=2,
            breaker_reset_s=0.3,
            triton_timeout_s=1.0,
        )
    )
    first, second = vectors(1000, seed=2), vectors(1500, seed=2, start=1000)
    await app.start()
    try:
        await produce(kafka.bootstrap, topics.features, first)
        assert len(await topics.read(topics.predictions, len(first))) == len(first)
        await triton.stop()
        await produce(kafka.bootstrap, topics.features, second)
        async with asyncio.timeout(20):
            while app.runtime.ready():
                await asyncio.sleep(0.05)
        processed = app.part(BatchConsumer).processed
        await asyncio.sleep(1.0)
        assert app.part(BatchConsumer).processed == processed  # retrying the same batch; nothing committed
        await triton.start()
        predictions = await topics.read(topics.predictions, len(first) + len(second), timeout_s=60)
    finally:
        await app.stop()
        await triton.stop()
    ids = [p["event_id"] for p in predictions]
    assert sorted(set(ids)) == sorted(v["event_id"] for v in first + second)
    expected = expected_scores(artifact, first + second)
    assert all(p["score"] == pytest.approx(expected[p["event_id"]], abs=1e-5) for p in predictions)
