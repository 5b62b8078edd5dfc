"""Wires the feature-writer together: consumer, Avro serde, Redis writer, dead letters, metrics, health."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from kestrel.featureset import load_feature_set
from kestrel.common.kafka import BatchConsumer, DeadLetterPublisher, Producer, aiokafka_config, librdkafka_config
from kestrel.common.metrics import MetricsEndpoint
from kestrel.common.service import LoopWatch
from kestrel.online_store import OnlineStoreWriter, client_for
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.feature_writer.handler import VectorBatchHandler
from kestrel.common.health import HealthEndpoint
from kestrel.feature_writer.settings import FeatureWriterSettings
from kestrel.featureset.check import VectorCheck

log = structlog.get_logger()

SERVICE = "feature-writer"


def vector_check(feature_set: str | None) -> VectorCheck:
    if not feature_set:
        return VectorCheck()
    definition = load_feature_set(feature_set)
    return VectorCheck(definition.version_id, definition.names)


@dataclass
class FeatureWriterApp:
    """Components in start order; the consumer (intake) starts last and stops first, committing its batch."""

    settings: FeatureWriterSettings
    stop_event: asyncio.Event | None = None
    """Set when the consumer loop dies, so the process exits and its supervisor restarts it."""

    def __post_init__(self) -> None:
        s = self.settings
        self.topic = s.topic_prefix + s.features_topic
        self.dlq_topic = s.topic_prefix + dead_letter_topic(SERVICE)
        registry = make_registry(s)
        self.serdes = [serde_for_topic(registry, self.topic, "feature_vector"),
                       serde_for_topic(registry, self.dlq_topic, "dead_letter")]
        self.producer = Producer(librdkafka_config(s))
        self.redis = client_for(s)
        self.handler = VectorBatchHandler(
            functools.partial(self.serdes[0].deserialize_many, errors="return"),
            OnlineStoreWriter(self.redis, ttl_s=s.ttl_s, chunk=s.script_chunk),
            vector_check(s.feature_set), s.key_prefix,
        )
        self.metrics = MetricsEndpoint(s.metrics_port)
        self.health = HealthEndpoint(s.health_port, {"/healthz": self._live, "/readyz": self._ready})
        self.consumer: BatchConsumer | None = None
        self.watch = LoopWatch(SERVICE, self.stop_event)

    async def start(self) -> None:
        for serde in self.serdes:
            await serde.aprepare()
        await self.producer.start()
        await self.producer.check_topics([self.topic, self.dlq_topic])
        await self._ping_redis()
        await self.metrics.start()
        await self.health.start()
        s = self.settings
        dead_letters = DeadLetterPublisher(self.producer, SERVICE, self.serdes[1].serialize, self.dlq_topic)
        self.consumer = BatchConsumer([self.topic], s.group_id, self.handler, dead_letters, aiokafka_config(s),
                                      s.consumer_options(), name=SERVICE)
        await self.consumer.start()
        self.watch.start(self.consumer)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()  # the watcher then sees the loop end normally
        await self.watch.wait()
        await self.health.stop()
        await self.metrics.stop()
        await self.producer.stop()
        await self.redis.aclose()

    async def _ping_redis(self) -> None:
        # Not fatal: batches wait (with backoff) until Redis answers, so the writer may start first.
        try:
            await self.redis.ping()
        except RedisError as exc:
            log.warning("redis_unreachable_at_start", url=self.settings.redis_url, error=str(exc))

    @property
    def failed(self) -> bool:
        return self.watch.failed

    def _live(self) -> bool:
        return self.watch.alive

    def _ready(self) -> bool:
        return self._live() and self.handler.redis_ok is not False
