"""Rollout on real servers: a challenger published into Triton's repository and served beside the champion, a
broken one refused without harm, and the stream scorer following the lifecycle topic: champion, then the
challenger in shadow, then the challenger promoted, with no restart."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.devstack.triton import TritonServer
from kestrel.featureset import load_feature_set
from kestrel.featureset.wire import VectorEncoder
from kestrel.inference.service import SCORER
from kestrel.inference.serving import LifecycleFollower
from kestrel.inference.settings import InferenceSettings
from kestrel.model import artifact as artifacts
from kestrel.retrain_trigger import rollout

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODEL = "kestrel_fraud"
CARD = load_feature_set("card")
VECTORS = AvroSerde(FileSchemaRegistry(), "features-value", load_schema("feature_vector"))
PREDICTIONS = AvroSerde(FileSchemaRegistry(), "predictions-value", load_schema("prediction"))
LIFECYCLE = AvroSerde(FileSchemaRegistry(), "lifecycle-value", load_schema("model_lifecycle"))


@pytest.fixture
async def triton(tmp_path: Path) -> Any:
    """A tritonserver of this test's own over a copy of the checked-in repository (version 1 only)."""
    repo = tmp_path / "models"
    shutil.copytree(
        ROOT / "infra" / "triton" / "models" / MODEL, repo / MODEL, ignore=shutil.ignore_patterns("__pycache__")
    )
    for extra in (repo / MODEL).iterdir():
        if extra.is_dir() and extra.name.isdigit() and extra.name != "1":
            shutil.rmtree(extra)
    server = TritonServer(tmp_path / "state", repo, load_models=[MODEL])
    server.die_with_parent = True
    await server.start()
    yield server, repo
    await server.stop()


def version_of(tmp_path: Path, repo: Path, version: int) -> Path:
    """Version 1's artifact saved again as `version` (same weights: the test follows versions, not scores)."""
    champion = artifacts.load(repo / MODEL / "1")
    return artifacts.save(replace(champion, version=version), tmp_path / "artifacts")


async def ready(triton: TritonServer, version: int) -> bool:
    status, _ = await triton._call("GET", f"/v2/models/{MODEL}/versions/{version}/ready", timeout=5.0)
    return status == 200


async def test_a_challenger_is_served_beside_the_champion_and_a_broken_one_changes_nothing(triton, tmp_path):
    server, repo = triton
    rollout.publish(version_of(tmp_path, repo, 2), repo)
    await rollout.serve(server, repo, MODEL, (1, 2))
    assert await ready(server, 1) and await ready(server, 2)
    broken = rollout.publish(version_of(tmp_path, repo, 3), repo)
    (broken / "weights.npz").write_bytes(b"not weights")
    config = (repo / MODEL / "config.pbtxt").read_text()
    with pytest.raises(rollout.RolloutError, match="refused versions"):
        await rollout.serve(server, repo, MODEL, (1, 2, 3))
    assert await ready(server, 1) and await ready(server, 2) and not await ready(server, 3)
    assert (repo / MODEL / "config.pbtxt").read_text() == config  # back to what was served


async def test_the_stream_scorer_follows_promotions_and_scores_the_challenger_in_shadow(kafka, triton, tmp_path):
    server, repo = triton
    rollout.publish(version_of(tmp_path, repo, 2), repo)
    await rollout.serve(server, repo, MODEL, (1, 2))
    topics = PrefixedTopics(kafka.bootstrap)
    await topics.apply(
        "kestrel.features.v1", "kestrel.predictions.v1", "kestrel.model-lifecycle.v1", dead_letter_topic("inference")
    )
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    await producer.start()
    await lifecycle(producer, topics, "promoted", "1")  # before the scorer starts: it catches up at start
    app = SCORER.app(
        InferenceSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=topics.prefix,
            triton_url=server.grpc_url,
            group_id=f"g-{topics.prefix}",
            metrics_port=0,
            health_port=0,
            session_timeout_ms=3000,
        )
    )
    await app.start()
    follower = app.part(LifecycleFollower)
    reader = AIOKafkaConsumer(
        topics.name("kestrel.predictions.v1"), bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        assert follower.state.champion == "1"
        first = await scored(producer, topics, reader, "a", 20, expected=20)
        assert {(p["source"], p["model_version"]) for p in first} == {("stream", "1")}
        await lifecycle(producer, topics, "shadow_started", "2")
        await until(lambda: follower.state.challenger == "2")
        second = await scored(producer, topics, reader, "b", 20, expected=40)
        assert sorted({(p["source"], p["model_version"]) for p in second}) == [("shadow", "2"), ("stream", "1")]
        assert len({p["prediction_id"] for p in second}) == 40  # ids differ by version: both are logged
        await lifecycle(producer, topics, "promoted", "2")
        await until(lambda: follower.state.champion == "2" and follower.state.challenger is None)
        third = await scored(producer, topics, reader, "c", 20, expected=20)
        assert {(p["source"], p["model_version"]) for p in third} == {("stream", "2")}
    finally:
        await reader.stop()
        await app.stop()
        await producer.stop()


async def lifecycle(producer: Producer, topics: PrefixedTopics, stage: str, version: str) -> None:
    value = {
        "model_name": MODEL,
        "version": version,
        "stage": stage,
        "metrics": {},
        "artifact_uri": None,
        "reason": "test",
        "at": int(time.time() * 1000),
    }
    await producer.send_many(
        [OutRecord(topics.name("kestrel.model-lifecycle.v1"), LIFECYCLE.serialize(value), MODEL.encode())]
    )


async def scored(
    producer: Producer, topics: PrefixedTopics, reader: AIOKafkaConsumer, tag: str, n: int, expected: int
) -> list[dict[str, Any]]:
    """Sends n feature vectors and returns the next `expected` predictions."""
    encoder = VectorEncoder.for_feature_set(VECTORS, CARD)
    now = int(time.time() * 1000)
    records = [
        OutRecord(
            topics.name("kestrel.features.v1"),
            encoder.encode(f"card-{i}", f"{tag}-{i}", now, [1.0] * len(CARD.names), now),
            f"card-{i}".encode(),
        )
        for i in range(n)
    ]
    await producer.send_many(records)
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while len(out) < expected:
            for batch in (await reader.getmany(timeout_ms=200)).values():
                out += [PREDICTIONS.deserialize(r.value) for r in batch]
    return out


async def until(check: Any, timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)
