"""The `up --demo` traffic really goes round the loop: ingest, features, feature-writer, inference (stream + API)."""

import pytest

from kestrel.common.topics import load_catalogue
from kestrel.devstack import demo
from kestrel.devstack.topics import apply_topics

pytestmark = pytest.mark.integration


async def test_demo_pushes_traffic_through_the_whole_loop(kafka, redis_server, triton, tmp_path, capsys):
    await apply_topics(kafka.bootstrap, load_catalogue())
    env = {"KESTREL_KAFKA_BOOTSTRAP": kafka.bootstrap, "KESTREL_SCHEMA_REGISTRY_STORE": str(tmp_path / "reg.json"),
           "KESTREL_REDIS_URL": redis_server.url, "KESTREL_TRITON_GRPC_URL": triton.grpc_url,
           "KESTREL_TRITON_HTTP_URL": triton.http_url}  # the demo loads kestrel_fraud itself if need be
    landed = await demo.run(env, keep_serving=False, seconds=1.0)

    # Ingest and Kafka, as before.
    assert landed["kestrel.events.v1"] > 3_000  # ~2,000 via ingest + ~5,000 direct, minus rejects
    assert landed["kestrel.events.v1"] >= landed["through_ingest"] + landed["straight"]
    assert landed["kestrel.dlq.ingest.v1"] > 0  # the 1% invalid events, kept for audit
    assert landed["kestrel.labels.v1"] > 0

    # The stream caught up: one vector per event (wall-clock times, nothing late), one prediction per vector.
    assert landed["caught_up"]
    assert landed["kestrel.dlq.features.v1"] == 0 and landed["kestrel.dlq.inference.v1"] == 0
    assert landed["kestrel.features.v1"] >= landed["kestrel.events.v1"]
    assert landed["stream_predictions"] >= landed["kestrel.features.v1"] >= landed["straight"] > 0

    # The API answered for cards the simulator used, with their online features.
    assert landed["api_predictions"] == demo.PREDICTS
    assert landed["kestrel.predictions.v1"] == landed["stream_predictions"] + landed["api_predictions"]
    answer = landed["predict"]
    assert answer.model_name == "kestrel_fraud" and answer.model_version
    assert 0.0 <= answer.score <= 1.0 and answer.decision == (answer.score >= answer.threshold)
    assert answer.features_age_ms >= 0 and "missing_features" not in answer.flags

    report = capsys.readouterr().out
    assert "grpcurl -plaintext 127.0.0.1:" in report and "first answer: score" in report
