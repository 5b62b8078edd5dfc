"""IngestSink against the real ingest service in-process, producing to the real broker."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from kestrel.common.errors import KestrelError
from kestrel.common.grpc.server import GrpcServer
from kestrel.common.topics import load_catalogue
from kestrel.devstack.topics import apply_topics
from kestrel.ingest.service import SERVICE
from kestrel.ingest.settings import IngestSettings
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig, run
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.sinks.ingest import IngestSink

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


@pytest.fixture
async def ingest(kafka):
    """The real ingest service with token auth on the real broker, on an isolated copy of the topics."""
    prefix = f"t-{uuid.uuid4().hex[:10]}."
    await apply_topics(kafka.bootstrap, load_catalogue(), prefix=prefix)
    app = SERVICE.app(
        IngestSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=prefix,
            grpc_host="127.0.0.1",
            grpc_port=0,
            metrics_port=0,
            auth_tokens=[SecretStr(TOKEN)],
        )
    )
    await app.start()
    yield f"127.0.0.1:{app.part(GrpcServer).port}", app
    await app.stop()


def config(addr: str, token: str | None, **generator) -> RunConfig:
    settings = SimulatorSettings(_env_file=None, ingest_addr=addr, ingest_token=SecretStr(token) if token else None)
    gen = GeneratorConfig(cards=300, seed=1, run_id="ing", merchants_per_country=50, **generator)
    return RunConfig(
        generator=gen, to="ingest", rate=0, count=3_000, clock="wall", labels=False, progress="off", settings=settings
    )


async def test_events_flow_and_rejections_are_counted_by_field(ingest):
    addr, app = ingest
    before = REGISTRY.get_sample_value("kestrel_ingest_events_total", {"outcome": "accepted"}) or 0
    summary = await run(config(addr, TOKEN, invalid_rate=0.05))
    assert summary.generated == 3_000
    assert summary.rejected == summary.invalid > 50
    accepted = REGISTRY.get_sample_value("kestrel_ingest_events_total", {"outcome": "accepted"}) - before
    assert summary.sent == accepted == 3_000 - summary.invalid
    assert summary.failed == 0
    assert sum(summary.rejections.values()) >= summary.rejected
    assert all(field.startswith("event.") for field in summary.rejections)


async def test_a_bad_token_stops_the_run_with_a_clear_error(ingest):
    addr, _ = ingest
    with pytest.raises(KestrelError, match="UNAUTHENTICATED"):
        await run(config(addr, "wrong"))


async def test_unreachable_ingest_fails_fast():
    settings = SimulatorSettings(_env_file=None, ingest_addr="127.0.0.1:1", ingest_timeout_s=0.5)
    with pytest.raises(KestrelError, match="not reachable"):
        await run(replace(config("127.0.0.1:1", None), settings=settings))


async def test_sink_refuses_labels():
    sink = IngestSink(SimulatorSettings(_env_file=None))
    with pytest.raises(NotImplementedError):
        await sink.send_labels([])
