"""Wires inference together: Triton client, online store, scorer, publisher, gRPC API and/or stream scorer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from tritonclient.utils import InferenceServerException

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.breaker import CircuitBreaker
from kestrel.common.errors import KestrelError
from kestrel.common.features import load_feature_set
from kestrel.common.features.request import RequestFeatures
from kestrel.common.features.wire import PredictionEncoder
from kestrel.common.grpc.server import GrpcServer, ServiceBinding
from kestrel.common.health import HealthEndpoint
from kestrel.common.kafka import BatchConsumer, DeadLetterPublisher, Producer, aiokafka_config, librdkafka_config
from kestrel.common.metrics import MetricsEndpoint
from kestrel.common.model.triton_config import INPUT
from kestrel.common.service import LoopWatch
from kestrel.common.online_store import OnlineStore
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.common.validation import Limits
from kestrel.inference.coalescer import Coalescer
from kestrel.inference.model import FallbackModel, TritonModel
from kestrel.inference.online import OnlineFeatures
from kestrel.inference.publisher import PredictionPublisher
from kestrel.inference.records import PredictionRecords
from kestrel.inference.scoring import Scorer
from kestrel.inference.servicer import InferenceServicer
from kestrel.inference.settings import InferenceSettings
from kestrel.inference.stream import StreamScorer

log = structlog.get_logger()

SERVICE = "inference"


class ConfigurationError(KestrelError):
    """The model and the feature set do not fit together: the service must not start."""


@dataclass
class InferenceApp:
    """Components in start order; the intakes (gRPC server, consumer) start last and stop first."""

    settings: InferenceSettings
    stop_event: asyncio.Event | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.api = s.role in ("all", "api")
        self.stream = s.role in ("all", "scorer")
        self.feature_set = load_feature_set(s.feature_set)
        self.predictions_topic = s.topic_prefix + s.predictions_topic
        self.features_topic = s.topic_prefix + s.features_topic
        self.dlq_topic = s.topic_prefix + dead_letter_topic(SERVICE)
        registry = make_registry(s)
        self.serdes = {"prediction": serde_for_topic(registry, self.predictions_topic, "prediction")}
        if self.stream:
            self.serdes["vector"] = serde_for_topic(registry, self.features_topic, "feature_vector")
            self.serdes["dead_letter"] = serde_for_topic(registry, self.dlq_topic, "dead_letter")
        self.producer = Producer(librdkafka_config(s), delivery_timeout_s=s.delivery_timeout_s)
        breaker = CircuitBreaker(f"triton {s.triton_url}", failures=s.breaker_failures, reset_s=s.breaker_reset_s)
        self.model = TritonModel(s.triton_url, s.model_name, s.model_version, timeout_s=s.triton_timeout_s,
                                 max_rows=s.triton_max_rows, breaker=breaker, ssl=s.triton_ssl)
        self.metrics = MetricsEndpoint(s.metrics_port)
        self.redis = None
        self.publisher: PredictionPublisher | None = None
        self.server: GrpcServer | None = None
        self.consumer: BatchConsumer | None = None
        self.scorer: StreamScorer | None = None
        self.watch = LoopWatch(f"{SERVICE}-scorer", self.stop_event)
        if self.api:
            self._build_api(s)
        if self.stream:
            records = PredictionRecords(PredictionEncoder(self.serdes["prediction"], self.feature_set.names),
                                        self.predictions_topic, "stream")
            self.scorer = StreamScorer(
                self.serdes["vector"], records, self.model, self.producer, self.feature_set, threshold=s.threshold,
                concurrency=s.scorer_concurrency, delivery_timeout_s=s.delivery_timeout_s)
        self.health = HealthEndpoint(s.health_port if self.stream else 0, {"/healthz": self._live, "/readyz": self._ready})

    def _build_api(self, s: InferenceSettings) -> None:
        self.redis = s.redis_client()
        store = OnlineStore(self.redis, self.feature_set, prefix=s.key_prefix, max_age_ms=int(s.max_feature_age_s * 1000))
        self.publisher = PredictionPublisher(self.producer, capacity=s.publish_buffer, batch=s.publish_batch,
                                             block_s=s.publish_block_s, delivery_timeout_s=s.delivery_timeout_s,
                                             grace_s=s.publish_grace_s)
        records = PredictionRecords(PredictionEncoder(self.serdes["prediction"], self.feature_set.names),
                                    self.predictions_topic, "api")
        scorer = Scorer(OnlineFeatures(store), RequestFeatures(self.feature_set),
                        FallbackModel(self.model, s.fallback_score), records, self.publisher.put,
                        threshold=s.threshold, feature_set_version=self.feature_set.version_id)
        coalescer = Coalescer(scorer, max_rows=min(s.coalesce_max_rows, s.triton_max_rows),
                              max_in_flight=s.coalesce_in_flight)
        servicer = InferenceServicer(scorer, coalescer, Limits(), max_batch=s.max_batch_requests,
                                     stream_window=s.stream_window)
        self.server = GrpcServer(s.grpc_server(), [ServiceBinding(
            servicer, inference_pb2_grpc.add_InferenceServiceServicer_to_server,
            inference_pb2.DESCRIPTOR.services_by_name["InferenceService"])])

    async def start(self) -> None:
        for serde in self.serdes.values():
            await serde.aprepare()
        await self.producer.start()
        topics = [self.predictions_topic] + ([self.features_topic, self.dlq_topic] if self.stream else [])
        await self.producer.check_topics(topics)
        await self.model.start()
        await self._check_model()
        await self.metrics.start()
        if self.publisher is not None:
            await self.publisher.start()
        if self.server is not None:
            await self.server.start()
        if self.scorer is not None:
            s = self.settings
            dead_letters = DeadLetterPublisher(self.producer, SERVICE, self.serdes["dead_letter"].serialize, self.dlq_topic)
            self.consumer = BatchConsumer([self.features_topic], s.group_id, self.scorer, dead_letters,
                                          aiokafka_config(s), s.consumer_options(), name=f"{SERVICE}-scorer")
            await self.consumer.start()
            self.watch.start(self.consumer)
        await self.health.start()

    async def stop(self) -> None:
        await self.health.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        await self.watch.wait()
        if self.server is not None:
            await self.server.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        await self.metrics.stop()
        await self.model.close()
        await self.producer.stop()
        if self.redis is not None:
            await self.redis.aclose()

    async def _check_model(self) -> None:
        """A model without the FEATURES input, or taking another number of features than the feature set, is a
        deployment error; Triton (or the model) not being up yet is not: the breaker covers calls meanwhile."""
        try:
            width = await self.model.input_width()
        except InferenceServerException as exc:
            log.warning("model_width_unchecked", model=self.model.name, error=str(exc))
            return
        if width is None:
            raise ConfigurationError(f"model {self.model.name} has no {INPUT} input: not a Kestrel scoring model")
        if width != len(self.feature_set.names):
            raise ConfigurationError(
                f"model {self.model.name} takes {width} features but feature set {self.feature_set.version_id} "
                f"has {len(self.feature_set.names)}")

    @property
    def failed(self) -> bool:
        return self.watch.failed

    def _live(self) -> bool:
        return self.watch.alive

    def _ready(self) -> bool:
        return self._live() and self.scorer is not None and self.scorer.healthy is not False
