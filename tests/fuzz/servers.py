"""In-process Kestrel services on the devstack's real servers, each on topics and keys of its own."""

from __future__ import annotations

import uuid
from typing import Any

from kestrel.common.runtime.runner import ServiceApp
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics

MODEL = "kestrel_fraud"


async def ingest_app(bootstrap: str) -> tuple[ServiceApp, PrefixedTopics]:
    from kestrel.ingest.service import SERVICE
    from kestrel.ingest.settings import IngestSettings

    topics = PrefixedTopics(bootstrap)
    await topics.apply("kestrel.events.v1", dead_letter_topic("ingest"))
    settings = IngestSettings(
        kafka_bootstrap=bootstrap, topic_prefix=topics.prefix, grpc_host="127.0.0.1", grpc_port=0, metrics_port=0
    )
    app = SERVICE.app(settings)
    await app.start()
    return app, topics


def inference_settings(topics: PrefixedTopics, redis_url: str, triton_url: str, **overrides: Any) -> Any:
    from kestrel.inference.settings import InferenceSettings

    return InferenceSettings(
        **{
            "kafka_bootstrap": topics.bootstrap,
            "topic_prefix": topics.prefix,
            "redis_url": redis_url,
            "key_prefix": topics.key_prefix,
            "triton_url": triton_url,
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "metrics_port": 0,
            "health_port": 0,
            "group_id": f"g-{uuid.uuid4().hex}",
            "session_timeout_ms": 6000,
            "triton_timeout_s": 5.0,
            **overrides,
        }
    )


async def inference_api(bootstrap: str, redis_url: str, triton_url: str) -> tuple[ServiceApp, PrefixedTopics]:
    from kestrel.inference.service import API

    topics = PrefixedTopics(bootstrap)
    await topics.apply(
        "kestrel.predictions.v1", "kestrel.features.v1", "kestrel.model-lifecycle.v1", dead_letter_topic("inference")
    )
    app = API.app(inference_settings(topics, redis_url, triton_url))
    await app.start()
    return app, topics
