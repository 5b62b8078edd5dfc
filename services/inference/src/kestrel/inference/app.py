"""Wires inference as two deployables sharing one settings type: the gRPC API and the stream scorer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from tritonclient.utils import InferenceServerException

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.avro import AvroSerde
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
from kestrel.common.online_store import OnlineStore
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.service import LoopWatch
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


class Backbone:
    """What both deployables start first and stop last: serdes, the producer, the Triton model, metrics."""

    def __init__(self, s: InferenceSettings, source: str, topics: dict[str, str]) -> None:
        """source: "api" or "stream"; topics: value schema -> topic the deployable uses besides predictions."""
        self.feature_set = load_feature_set(s.feature_set)
        registry = make_registry(s)
        self.topics = {schema: s.topic_prefix + topic
                       for schema, topic in {"prediction": s.predictions_topic, **topics}.items()}
        self.serdes: dict[str, AvroSerde] = {
            schema: serde_for_topic(registry, topic, schema) for schema, topic in self.topics.items()}
        self.records = PredictionRecords(PredictionEncoder(self.serdes["prediction"], self.feature_set.names),
                                         self.topics["prediction"], source)
        self.producer = Producer(librdkafka_config(s), delivery_timeout_s=s.delivery_timeout_s)
        breaker = CircuitBreaker(f"triton {s.triton_url}", failures=s.breaker_failures, reset_s=s.breaker_reset_s)
        self.model = TritonModel(s.triton_url, s.model_name, s.model_version, timeout_s=s.triton_timeout_s,
                                 max_rows=s.triton_max_rows, breaker=breaker, ssl=s.triton_ssl)
        self.metrics = MetricsEndpoint(s.metrics_port)

    async def start(self) -> None:
        for serde in self.serdes.values():
            await serde.aprepare()
        await self.producer.start()
        await self.producer.check_topics(self.topics.values())
        await self.model.start()
        await self._check_model()
        await self.metrics.start()

    async def stop(self) -> None:
        await self.metrics.stop()
        await self.model.close()
        await self.producer.stop()

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


@dataclass
class ApiApp:
    """The gRPC InferenceService: backbone, prediction publisher, then the server (intake: started last)."""

    settings: InferenceSettings
    stop_event: asyncio.Event | None = None
    failed = False
    """Nothing here dies on its own: gRPC health and the supervisor watch the process."""

    def __post_init__(self) -> None:
        s = self.settings
        self.backbone = Backbone(s, "api", {})
        fs = self.backbone.feature_set
        self.redis = s.redis_client()
        store = OnlineStore(self.redis, fs, prefix=s.key_prefix, max_age_ms=int(s.max_feature_age_s * 1000))
        self.publisher = PredictionPublisher(
            self.backbone.producer, capacity=s.publish_buffer, batch=s.publish_batch, block_s=s.publish_block_s,
            delivery_timeout_s=s.delivery_timeout_s, grace_s=s.publish_grace_s)
        model = FallbackModel(self.backbone.model, s.fallback_score)
        scorer = Scorer(OnlineFeatures(store), RequestFeatures(fs), model, self.backbone.records, self.publisher.put,
                        threshold=s.threshold, feature_set_version=fs.version_id)
        coalescer = Coalescer(scorer, max_rows=min(s.coalesce_max_rows, s.triton_max_rows),
                              max_in_flight=s.coalesce_in_flight)
        servicer = InferenceServicer(scorer, coalescer, Limits(), max_batch=s.max_batch_requests,
                                     stream_window=s.stream_window)
        self.server = GrpcServer(s.grpc_server(), [ServiceBinding(
            servicer, inference_pb2_grpc.add_InferenceServiceServicer_to_server,
            inference_pb2.DESCRIPTOR.services_by_name["InferenceService"])])

    async def start(self) -> None:
        await self.backbone.start()
        await self.publisher.start()
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
        await self.publisher.stop()  # after the server: answered predictions still reach the log
        await self.backbone.stop()
        await self.redis.aclose()


@dataclass
class StreamApp:
    """The stream scorer: backbone, then the consumer (intake) and its watch; HTTP /healthz and /readyz."""

    settings: InferenceSettings
    stop_event: asyncio.Event | None = None
    """Set when the consumer loop dies, so the process exits and its supervisor restarts it."""

    def __post_init__(self) -> None:
        s = self.settings
        self.backbone = Backbone(s, "stream", {"feature_vector": s.features_topic,
                                               "dead_letter": dead_letter_topic(SERVICE)})
        self.scorer = StreamScorer(
            self.backbone.serdes["feature_vector"], self.backbone.records, self.backbone.model, self.backbone.producer,
            self.backbone.feature_set, threshold=s.threshold, concurrency=s.scorer_concurrency,
            delivery_timeout_s=s.delivery_timeout_s)
        self.consumer: BatchConsumer | None = None
        self.watch = LoopWatch(f"{SERVICE}-scorer", self.stop_event)
        self.health = HealthEndpoint(s.health_port, {"/healthz": self._live, "/readyz": self._ready})

    async def start(self) -> None:
        await self.backbone.start()
        s, b = self.settings, self.backbone
        dead_letters = DeadLetterPublisher(b.producer, SERVICE, b.serdes["dead_letter"].serialize,
                                           b.topics["dead_letter"])
        self.consumer = BatchConsumer([b.topics["feature_vector"]], s.group_id, self.scorer, dead_letters,
                                      aiokafka_config(s), s.consumer_options(), name=f"{SERVICE}-scorer")
        await self.consumer.start()
        self.watch.start(self.consumer)
        await self.health.start()

    async def stop(self) -> None:
        await self.health.stop()
        if self.consumer is not None:
            await self.consumer.stop()  # the watcher then sees the loop end normally
        await self.watch.wait()
        await self.backbone.stop()

    @property
    def failed(self) -> bool:
        return self.watch.failed

    def _live(self) -> bool:
        return self.watch.alive

    def _ready(self) -> bool:
        return self._live() and self.scorer.healthy is not False
