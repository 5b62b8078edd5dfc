"""The `up --demo` traffic really goes round the loop, through the services running as separate processes."""

import asyncio

import pytest

from kestrel.common.topics import load_catalogue
from kestrel.devstack import demo
from kestrel.devstack.services import SERVICES, stack_env
from kestrel.devstack.supervisor import Supervisor
from kestrel.devstack.topics import apply_topics

pytestmark = pytest.mark.integration


async def test_demo_pushes_traffic_through_the_whole_loop(kafka, redis_server, triton, postgres, tmp_path, capsys):
    await apply_topics(kafka.bootstrap, load_catalogue())
    await triton.ensure_loaded("kestrel_fraud")  # `kestrel-stack up` loads it at start
    addresses = {
        "kafka_bootstrap": kafka.bootstrap,
        "redis_url": redis_server.url,
        "triton_url": triton.grpc_url,
        "postgres_dsn": postgres.dsn,
        "schema_registry_store": str(tmp_path / "reg.json"),
    }
    supervisor = Supervisor(tmp_path, stack_env(addresses), SERVICES)
    await supervisor.start()
    supervise = asyncio.create_task(supervisor.supervise())
    try:
        await supervisor.wait_ready()
        pids = {row.popen.pid for row in supervisor.replicas if row.popen}
        assert len(pids) == len(SERVICES)  # one process each
        endpoints = {f"KESTREL_{name.upper()}": value for name, value in addresses.items()}
        landed = await demo.run(endpoints, demo.Services.of(supervisor), seconds=1.0)
        assert all(r.restarts == 0 for r in supervisor.replicas)
    finally:
        supervise.cancel()
        await supervisor.stop()

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
