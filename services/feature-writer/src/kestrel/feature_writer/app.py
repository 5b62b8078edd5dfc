"""The feature-writer's wiring: feature vectors from Kafka into the Redis online store."""

from __future__ import annotations

import functools
from typing import Any

from kestrel.common.runtime.app import Closing, Runtime
from kestrel.common.runtime.consumer import batch_consumer, producer
from kestrel.feature_writer.handler import VectorBatchHandler
from kestrel.feature_writer.settings import FeatureWriterSettings
from kestrel.featureset import load_feature_set
from kestrel.featureset.check import VectorCheck
from kestrel.online_store import OnlineStoreWriter
from kestrel.online_store.client import client_for


def components(rt: Runtime[FeatureWriterSettings]) -> list[Any]:
    """Producer (dead letters), Redis, then the consumer: intake starts last and stops first, committing."""
    s = rt.settings
    assert rt.topics is not None
    vectors = rt.topics.bind(s.features_topic)
    redis = client_for(s)
    handler = VectorBatchHandler(
        functools.partial(rt.topics.serde(vectors).deserialize_many, errors="return"),
        OnlineStoreWriter(
            redis,
            ttl_s=s.ttl_s,
            chunk=s.script_chunk,
            wait_replicas=s.redis_wait_replicas,
            wait_timeout_ms=s.redis_wait_timeout_ms,
        ),
        vector_check(s.feature_set),
        s.key_prefix,
    )
    rt.ready_when(handler.redis.ready)  # Redis down: not ready; batches wait with backoff
    out = producer(rt)
    return [out, Closing(redis), batch_consumer(rt, [vectors], s.group_id, handler, out)]


def vector_check(feature_set: str | None) -> VectorCheck:
    if not feature_set:
        return VectorCheck()
    definition = load_feature_set(feature_set)
    return VectorCheck(definition.version_id, definition.names)
