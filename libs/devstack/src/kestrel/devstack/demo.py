"""`kestrel-stack up --demo`: push sample traffic through the services the stack runs as processes.

Simulator traffic goes through ingest (with some invalid events) and straight to Kafka; once features,
feature-writer and the stream scorer have caught up, a few Predict calls go through the inference API, and a
report says what landed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.errors import KestrelError
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import dead_letter_topic, load_catalogue
from kestrel.feature_writer.settings import FeatureWriterSettings
from kestrel.features.settings import FeaturesSettings
from kestrel.featureset import load_feature_set
from kestrel.inference.settings import InferenceSettings
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig
from kestrel.simulator.runner import run as simulate
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.summary import Summary

EVENTS, LABELS = "kestrel.events.v1", "kestrel.labels.v1"
FEATURES, PREDICTIONS = "kestrel.features.v1", "kestrel.predictions.v1"
DEAD_LETTERS = tuple(dead_letter_topic(s) for s in ("ingest", "features", "feature-writer", "inference"))
TOPICS = (EVENTS, LABELS, FEATURES, PREDICTIONS, *DEAD_LETTERS)

CATCH_UP_S = 60.0
"""Longest wait for features, the online store and the stream scorer to process the demo traffic."""
PREDICTS = 3
"""Predict calls through the inference API, each for a card the simulator used."""


class DemoError(KestrelError):
    """The demo cannot run on this stack (e.g. no tritonserver)."""


@dataclass(frozen=True)
class Services:
    """Where the stack's service processes listen: gRPC host:port of ingest and inference, metrics ports."""

    ingest: str
    inference: str
    metrics: Mapping[str, int]

    @classmethod
    def of(cls, supervisor: Any) -> Services:
        """From a running kestrel.devstack.supervisor.Supervisor."""
        metrics = {r.name: r.ports["metrics_port"] for r in supervisor.replicas}
        return cls(
            supervisor.first("ingest").address("grpc_port"), supervisor.first("inference").address("grpc_port"), metrics
        )


async def run(endpoints: Mapping[str, str], services: Services, seconds: float = 5.0) -> dict[str, Any]:
    """Traffic through the whole loop; returns the records landed per topic (plus the demo's own counts).

    Besides one entry per topic in TOPICS, the result holds "through_ingest" and "straight" (events the
    simulator delivered each way), "caught_up" (the stream processed everything in time),
    "stream_predictions", "api_predictions" and "predict" (the first PredictResponse).
    """
    if not endpoints.get("KESTREL_TRITON_URL"):
        raise DemoError("the demo scores with tritonserver: start the stack without --no-triton")
    bootstrap = endpoints["KESTREL_KAFKA_BOOTSTRAP"]
    shared: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "schema_registry_store": endpoints.get("KESTREL_SCHEMA_REGISTRY_STORE"),
    }
    async with Offsets(bootstrap) as offsets:
        before = await offsets.ends(TOPICS)
        via_ingest = await simulate(
            RunConfig(
                to="ingest",
                ingest_addr=services.ingest,
                rate=2_000,
                duration_s=seconds,
                generator=GeneratorConfig(invalid_rate=0.01),
                settings=SimulatorSettings(**shared),
                progress="log",
            )
        )
        direct = await simulate(
            RunConfig(to="kafka", rate=5_000, duration_s=seconds, settings=SimulatorSettings(**shared), progress="log")
        )
        landed, caught_up = await catch_up(offsets, before, consumer_groups(), CATCH_UP_S)
        stream = landed[PREDICTIONS]
        events = await recent_events(offsets, make_registry(KafkaSettings(**shared)), before, PREDICTS)
        responses = await predict(services.inference, events)
        landed = await _wait_for(offsets, before, lambda grown: grown[PREDICTIONS] >= stream + len(responses), 10.0)
    landed |= {
        "through_ingest": via_ingest.sent,
        "straight": direct.sent,
        "caught_up": caught_up,
        "stream_predictions": stream,
        "api_predictions": len(responses),
        "predict": responses[0] if responses else None,
    }
    _report(services, via_ingest, direct, landed, events, responses)
    return landed


def consumer_groups() -> dict[str, str]:
    """Group -> topic of features, feature-writer and the stream scorer, as their settings name them."""
    features = FeaturesSettings()
    version = load_feature_set(features.feature_set).version_id
    return {
        features.group(version): EVENTS,
        FeatureWriterSettings().group_id: FEATURES,
        InferenceSettings().group_id: FEATURES,
    }


class Offsets:
    """One consumer and one admin client for end offsets and consumer-group lag (async context manager)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._catalogue = load_catalogue()
        self._open = False

    async def __aenter__(self) -> Offsets:
        await self._consumer.start()
        await self._admin.start()
        self._open = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self._admin.close()
            await self._consumer.stop()

    def partitions(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in range(self._catalogue[topic].partitions)]

    async def ends(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        for topic in topics:
            out |= await self._consumer.end_offsets(self.partitions(topic))
        return out

    async def lag(self, group: str, topic: str) -> int:
        """Records of `topic` the group has not committed yet (all of them before its first commit)."""
        partitions = self.partitions(topic)
        ends = await self._consumer.end_offsets(partitions)
        committed = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
        done = {tp: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
        return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())


async def end_offsets(bootstrap: str) -> dict[str, int]:
    """Records in each demo topic so far (sum of end offsets over partitions)."""
    async with Offsets(bootstrap) as offsets:
        return _per_topic(await offsets.ends(TOPICS))


def _per_topic(ends: dict[TopicPartition, int]) -> dict[str, int]:
    totals = dict.fromkeys(TOPICS, 0)
    for tp, end in ends.items():
        totals[tp.topic] += end
    return totals


def _growth(before: dict[TopicPartition, int], now: dict[TopicPartition, int]) -> dict[str, Any]:
    was, total = _per_topic(before), _per_topic(now)
    return {topic: total[topic] - was[topic] for topic in TOPICS}


async def _wait_for(
    offsets: Offsets,
    before: dict[TopicPartition, int],
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
    extra: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, Any]:
    """Growth per topic since `before`, once `done(growth)` (and `extra()`) hold or `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        grown = _growth(before, await offsets.ends(TOPICS))
        if (done(grown) and (extra is None or await extra())) or time.monotonic() > deadline:
            return grown
        await asyncio.sleep(0.25)


async def catch_up(
    offsets: Offsets, before: dict[TopicPartition, int], groups: dict[str, str], timeout: float
) -> tuple[dict[str, Any], bool]:
    """Wait until every event that landed has a feature vector (or a dead letter), every vector a stream
    prediction (or a dead letter), and each group (features, feature-writer, scorer) has no lag."""

    def covered(grown: dict[str, Any]) -> bool:
        return (
            grown[FEATURES] + grown[dead_letter_topic("features")] >= grown[EVENTS]
            and grown[PREDICTIONS] + grown[dead_letter_topic("inference")] >= grown[FEATURES]
        )

    async def no_lag() -> bool:
        for group, topic in groups.items():
            if await offsets.lag(group, topic):
                return False
        return True

    grown = await _wait_for(offsets, before, covered, timeout, no_lag)
    return grown, covered(grown) and await no_lag()


async def recent_events(
    offsets: Offsets, registry: Any, before: dict[TopicPartition, int], n: int
) -> list[dict[str, Any]]:
    """The newest demo event of up to `n` partitions of the events topic: cards the simulator used."""
    serde = serde_for_topic(registry, EVENTS, "event")
    ends = await offsets.ends([EVENTS])
    grown = [tp for tp, end in ends.items() if end > before.get(tp, 0)][:n]
    if not grown:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=offsets.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(grown)
        for tp in grown:
            consumer.seek(tp, ends[tp] - 1)
        found: dict[TopicPartition, dict[str, Any]] = {}
        async with asyncio.timeout(10):
            while len(found) < len(grown):
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    if records:
                        found.setdefault(tp, serde.deserialize(records[-1].value))
        return [found[tp] for tp in grown]
    finally:
        await consumer.stop()


async def predict(address: str, events: Sequence[dict[str, Any]]) -> list[inference_pb2.PredictResponse]:
    """One Predict per event: a new payment, now, by the same card at the same merchant."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        responses = []
        for i, event in enumerate(events):
            now = {**event, "event_id": f"demo-{uuid.uuid4().hex[:12]}", "event_time": int(time.time() * 1000)}
            request = inference_pb2.PredictRequest(event=record_to_event(now), request_id=f"demo-{i}")
            responses.append(await stub.Predict(request, timeout=10))
        return responses


def _report(
    services: Services,
    via_ingest: Summary,
    direct: Summary,
    landed: dict[str, Any],
    events: Sequence[dict[str, Any]],
    responses: Sequence[inference_pb2.PredictResponse],
) -> None:
    ingest_addr, inference_addr = services.ingest, services.inference
    print("\nDemo traffic", flush=True)
    print(
        f"  through ingest ({ingest_addr}): sent {via_ingest.sent:,}, rejected {via_ingest.rejected:,} "
        f"(by field: {dict(via_ingest.rejections)}), fraud {via_ingest.fraud:,}"
    )
    print(f"  straight to Kafka:           sent {direct.sent:,}, fraud {direct.fraud:,}")
    for topic in TOPICS:
        print(f"  {topic:<32} +{landed[topic]:,} records")
    state = "caught up" if landed["caught_up"] else f"NOT caught up within {CATCH_UP_S:.0f} s"
    print(
        f"\n  features computed: {landed[FEATURES]:,}; predictions: {landed[PREDICTIONS]:,} "
        f"(stream {landed['stream_predictions']:,}, api {landed['api_predictions']:,}); "
        f"dead letters: {sum(landed[t] for t in DEAD_LETTERS):,}; stream {state}"
    )
    if landed[FEATURES] > landed[EVENTS] or landed["stream_predictions"] > landed[FEATURES]:
        print(
            "  (more vectors or predictions than new events: the consumer groups also worked through records "
            "already in the topics, e.g. from earlier runs)"
        )
    for event, response in zip(events, responses):
        print(f"  Predict {event['entity_id']}: score {response.score:.4f}, decision {response.decision}")
    if responses:
        r = responses[0]
        print(
            f"  first answer: score {r.score:.6f} decision {r.decision} (threshold {r.threshold}) "
            f"model {r.model_name}/{r.model_version} features_age_ms {r.features_age_ms} "
            f"feature_set {r.feature_set_version} degraded {r.degraded} flags {list(r.flags)}"
        )
    print(f"\n  ingest    gRPC on {ingest_addr} (reflection on): grpcurl -plaintext {ingest_addr} list")
    print(f"  inference gRPC on {inference_addr} (reflection on): grpcurl -plaintext {inference_addr} list")
    print("  metrics: " + ", ".join(f"{name} :{port}/metrics" for name, port in services.metrics.items()), flush=True)
