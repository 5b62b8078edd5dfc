"""`kestrel-stack up --demo`: serve ingest on the local stack and push sample traffic through it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kestrel.common.topics import load_catalogue
from kestrel.devstack.ports import pick_port
from kestrel.ingest.app import IngestApp
from kestrel.ingest.settings import IngestSettings
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig, run as simulate
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.summary import Summary

TOPICS = ("kestrel.events.v1", "kestrel.labels.v1", "kestrel.dlq.ingest.v1")


async def run(env: dict[str, str], keep_serving: bool = True, seconds: float = 5.0) -> dict[str, Any]:
    """Traffic through ingest (with some invalid events) and straight to Kafka; prints what landed."""
    shared = {"kafka_bootstrap": env["KESTREL_KAFKA_BOOTSTRAP"],
              "schema_registry_store": env.get("KESTREL_SCHEMA_REGISTRY_STORE")}
    ingest = IngestApp(IngestSettings(grpc_host="127.0.0.1", grpc_port=pick_port(50051),
                                      metrics_port=pick_port(9100), **shared))
    await ingest.start()
    try:
        address = f"127.0.0.1:{ingest.server.port}"
        before = await end_offsets(env["KESTREL_KAFKA_BOOTSTRAP"])
        via_ingest = await simulate(RunConfig(to="ingest", ingest_addr=address, rate=2_000, duration_s=seconds,
                                              generator=GeneratorConfig(invalid_rate=0.01),
                                              settings=SimulatorSettings(**shared), progress="log"))
        direct = await simulate(RunConfig(to="kafka", rate=5_000, duration_s=seconds,
                                          settings=SimulatorSettings(**shared), progress="log"))
        after = await end_offsets(env["KESTREL_KAFKA_BOOTSTRAP"])
        landed = {t: after[t] - before[t] for t in TOPICS}
        _report(address, via_ingest, direct, landed, ingest.metrics.port)
        if keep_serving:
            await asyncio.Event().wait()  # until `up` is stopped (Ctrl-C / kestrel-stack down)
        return landed
    finally:
        await ingest.stop()


async def end_offsets(bootstrap: str) -> dict[str, int]:
    """Records in each demo topic so far (sum of end offsets over partitions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        catalogue = load_catalogue()
        totals = {}
        for topic in TOPICS:
            partitions = [TopicPartition(topic, p) for p in range(catalogue[topic].partitions)]
            totals[topic] = sum((await consumer.end_offsets(partitions)).values())
        return totals
    finally:
        await consumer.stop()


def _report(address: str, via_ingest: Summary, direct: Summary, landed: dict[str, int], metrics_port: int) -> None:
    print("\nDemo traffic", flush=True)
    print(f"  through ingest ({address}): sent {via_ingest.sent:,}, rejected {via_ingest.rejected:,} "
          f"(by field: {dict(via_ingest.rejections)}), fraud {via_ingest.fraud:,}")
    print(f"  straight to Kafka:           sent {direct.sent:,}, fraud {direct.fraud:,}")
    for topic, count in landed.items():
        print(f"  {topic:<28} +{count:,} records")
    print(f"\n  ingest keeps serving on {address} (reflection on; metrics on :{metrics_port}/metrics)", flush=True)
