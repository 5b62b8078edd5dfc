"""Helpers for inference tests: isolated topics and key prefix, the fraud model loaded, card events and vectors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from kestrel.api.v1 import inference_pb2
from kestrel.common.convert import record_to_event
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.featureset import load_feature_set, offline
from kestrel.inference.settings import InferenceSettings
from kestrel.online_store import OnlineStoreWriter, VectorWrite, redis_client

MODEL = "kestrel_fraud"
CARD = load_feature_set("card")


class Topics(PrefixedTopics):
    @property
    def predictions(self) -> str:
        return self.name("kestrel.predictions.v1")

    @property
    def features(self) -> str:
        return self.name("kestrel.features.v1")

    @property
    def dead_letters(self) -> str:
        return self.name(dead_letter_topic("inference"))

    async def read(self, topic: str, expected: int, timeout_s: float = 30) -> list[dict[str, Any]]:  # type: ignore[override]
        """The first `expected` records of a topic, decoded (predictions, or dead letters)."""
        name = "dead_letter" if topic == self.dead_letters else "prediction"
        serde = serde_for_topic(FileSchemaRegistry(), topic, name)
        return [serde.deserialize(r.value) for r in await super().read(topic, expected, timeout_s)]


def settings(topics: Topics, redis_url: str, triton_url: str, **overrides: Any) -> InferenceSettings:
    base = dict(
        kafka_bootstrap=topics.bootstrap,
        topic_prefix=topics.prefix,
        redis_url=redis_url,
        key_prefix=topics.key_prefix,
        triton_url=triton_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        health_port=0,
        group_id=f"g-{topics.prefix}",
        session_timeout_ms=3000,
        retry_initial_s=0.05,
        retry_max_s=0.5,
        breaker_reset_s=0.5,
        triton_timeout_s=2.0,
    )
    return InferenceSettings(**{**base, **overrides})


def event(
    entity: str,
    t_ms: int,
    amount: float,
    *,
    event_id: str | None = None,
    merchant: str = "m-1",
    country: str = "NL",
    channel: str = "web",
    mcc: str = "5411",
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"e-{uuid.uuid4().hex[:12]}",
        "entity_id": entity,
        "event_time": t_ms,
        "amount": amount,
        "currency": "EUR",
        "merchant_id": merchant,
        "merchant_category": mcc,
        "country": country,
        "channel": channel,
        "attributes": {},
    }


def request(record: dict[str, Any], **kw: Any) -> inference_pb2.PredictRequest:
    return inference_pb2.PredictRequest(event=record_to_event(record), **kw)


def history(entity: str, n: int, end_ms: int, step_ms: int = 20_000, seed: int = 0) -> list[dict[str, Any]]:
    """n earlier events of one card, the last at end_ms."""
    rng = np.random.default_rng(seed)
    return [
        event(
            entity,
            end_ms - (n - 1 - i) * step_ms,
            float(round(rng.uniform(5, 200), 2)),
            merchant=f"m-{rng.integers(4)}",
        )
        for i in range(n)
    ]


async def store_vectors(redis_url: str, key_prefix: str, events: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Writes every event's offline vector with the event, as the stream and the feature-writer do (the store
    keeps each card's newest vector and its event log); returns the newest."""
    vectors = offline.compute(events, CARD)
    writes, newest = [], {}
    for record, vector in zip(events, vectors):
        if vector is None:
            continue
        newest[record["entity_id"]] = (record, vector)
        writes.append(
            VectorWrite.from_record(
                {
                    "entity_id": record["entity_id"],
                    "event_id": record["event_id"],
                    "event_time": record["event_time"],
                    "feature_set_version": CARD.version_id,
                    "features": dict(zip(CARD.names, vector)),
                    "computed_at": record["event_time"],
                    "categories": {source: record[source] for source in CARD.categorical_sources},
                    "numbers": {source: record[source] for source in CARD.numeric_sources},
                    "log_retention_ms": (CARD.max_window_s + CARD.allowed_lateness_s) * 1000,
                    "log_cap": CARD.max_events_per_entity,
                },
                key_prefix,
            )
        )
    client = redis_client(redis_url)
    try:
        await OnlineStoreWriter(client, ttl_s=600).write(writes)
    finally:
        await client.aclose()
    return {entity: vector for entity, (_, vector) in newest.items()}


def now_ms() -> int:
    return int(time.time() * 1000)
