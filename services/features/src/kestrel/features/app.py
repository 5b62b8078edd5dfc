"""Wires the features service together: feature set, serdes, state store, changelog, producer, consumer loop."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from kestrel.featureset import FeatureDefinitionError, load_feature_set
from kestrel.featureset.state import FeatureComputer
from kestrel.common.kafka import DeadLetterPublisher, Producer, aiokafka_config, librdkafka_config
from kestrel.common.metrics import MetricsEndpoint
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.stateful import Changelog, LoopOptions, StatefulLoop, changelog_topic, ensure_changelog
from kestrel.common.topics import dead_letter_topic
from kestrel.common.validation import Limits
from kestrel.features.processor import BatchProcessor
from kestrel.features.settings import FeaturesSettings
from kestrel.features.store import StateStore
from kestrel.featureset.wire import VectorEncoder


@dataclass
class FeaturesApp:
    """Components in start order; the consumer loop (intake) starts last and stops first."""

    settings: FeaturesSettings

    def __post_init__(self) -> None:
        s = self.settings
        self.feature_set = fs = load_feature_set(s.feature_set)
        if s.evict_after_s < fs.max_window_s + fs.allowed_lateness_s:
            raise FeatureDefinitionError(f"KESTREL_FEATURES_EVICT_AFTER_S={s.evict_after_s} is shorter than the "
                                         f"longest window plus lateness ({fs.max_window_s + fs.allowed_lateness_s} s)")
        self.group_id = s.group(fs.version_id)
        self.events_topic = s.topic_prefix + s.events_topic
        self.features_topic = s.topic_prefix + s.features_topic
        self.dead_letter_topic = s.topic_prefix + dead_letter_topic("features")
        registry = make_registry(s)
        events = serde_for_topic(registry, self.events_topic, "event")
        vectors = serde_for_topic(registry, self.features_topic, "feature_vector")
        letters = serde_for_topic(registry, self.dead_letter_topic, "dead_letter")
        self._serdes = [events, vectors, letters]
        self.producer = Producer(librdkafka_config(s), delivery_timeout_s=s.delivery_timeout_s)
        self.changelog = Changelog(changelog_topic(s.topic_prefix, self.group_id), aiokafka_config(s))
        computer = FeatureComputer(fs)
        limits = Limits(max_future_skew_ms=s.max_future_skew_s * 1000)
        self.store = StateStore(computer, s.evict_after_s * 1000, limits.max_future_skew_ms)
        processor = BatchProcessor(computer, self.store, events.deserialize,
                                   VectorEncoder(vectors, fs.names, fs.version_id), self.features_topic, limits)
        self.worker = StatefulLoop(
            "features", self._consumer, self.events_topic, processor, self.store, self.changelog, self.producer,
            DeadLetterPublisher(self.producer, "features", letters.serialize, self.dead_letter_topic),
            LoopOptions(batch_max=s.batch_max, poll_timeout_ms=s.poll_timeout_ms,
                        commit_interval_s=s.commit_interval_s, retry_max_s=s.retry_max_s),
        )
        self.metrics = MetricsEndpoint(s.metrics_port)

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            group_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms, heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_interval_ms=s.max_poll_interval_ms, **aiokafka_config(s),
        )

    async def start(self) -> None:
        for serde in self._serdes:
            await serde.aprepare()
        await ensure_changelog(aiokafka_config(self.settings), self.events_topic, self.changelog.topic,
                               self.settings.changelog_replication)
        await self.producer.start()
        await self.producer.check_topics([self.features_topic, self.dead_letter_topic])
        await self.changelog.start()
        await self.metrics.start()
        await self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()
        await self.metrics.stop()
        await self.changelog.stop()
        await self.producer.stop()
