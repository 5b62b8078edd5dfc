"""IngestSink against the real ingest servicer in-process (a fake producer stands in for Kafka)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from pydantic import SecretStr

from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.errors import KestrelError
from kestrel.common.grpc.server import GrpcServer, GrpcServerSettings, ServiceBinding
from kestrel.common.kafka import Delivery
from kestrel.ingest.publisher import EventPublisher
from kestrel.ingest.servicer import IngestServicer
from kestrel.ingest.validation import Limits
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig, run
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.sinks.ingest import IngestSink

TOKEN = "s3cret-token"


class FakeProducer:
    """Acknowledges every record at once, like a healthy broker."""

    brokers_down = False

    def __init__(self) -> None:
        self.records = []

    async def enqueue(self, record):
        self.records.append(record)
        future = asyncio.get_running_loop().create_future()
        future.set_result(Delivery(record.topic, 0, len(self.records)))
        return future


@pytest.fixture
async def ingest():
    producer = FakeProducer()
    publisher = EventPublisher(producer, lambda record: b"x", "kestrel.events.v1", Limits(), 5.0)
    server = GrpcServer(
        GrpcServerSettings(host="127.0.0.1", port=0, auth_tokens=[SecretStr(TOKEN)]),
        [ServiceBinding(IngestServicer(publisher, 500), ingest_pb2_grpc.add_IngestServiceServicer_to_server,
                        ingest_pb2.DESCRIPTOR.services_by_name["IngestService"])],
    )
    await server.start()
    yield f"127.0.0.1:{server.port}", producer
    await server.stop()


def config(addr: str, token: str | None, **generator) -> RunConfig:
    settings = SimulatorSettings(_env_file=None, ingest_addr=addr,
                                 ingest_token=SecretStr(token) if token else None)
    gen = GeneratorConfig(cards=300, seed=1, run_id="ing", merchants_per_country=50, **generator)
    return RunConfig(generator=gen, to="ingest", rate=0, count=3_000, clock="wall", labels=False,
                     progress="off", settings=settings)


async def test_events_flow_and_rejections_are_counted_by_field(ingest):
    addr, producer = ingest
    summary = await run(config(addr, TOKEN, invalid_rate=0.05))
    assert summary.generated == 3_000
    assert summary.rejected == summary.invalid > 50
    assert summary.sent == len(producer.records) == 3_000 - summary.invalid
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
