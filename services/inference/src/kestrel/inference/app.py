"""Inference's wiring, as two deployables over one settings type: the gRPC API and the stream scorer."""

from __future__ import annotations

from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from tritonclient.utils import InferenceServerException

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.breaker import CircuitBreaker
from kestrel.common.errors import KestrelError
from kestrel.common.grpc.server import GrpcServer, ServiceBinding
from kestrel.common.kafka.config import aiokafka_config
from kestrel.common.runtime.app import Closing, Runtime
from kestrel.common.runtime.consumer import batch_consumer, producer
from kestrel.common.validation import Limits
from kestrel.featureset import FeatureSet, load_feature_set
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.wire import PredictionEncoder
from kestrel.inference.coalescer import Coalescer
from kestrel.inference.model import FallbackModel, TritonModel
from kestrel.inference.online import OnlineFeatures
from kestrel.inference.publisher import PredictionPublisher
from kestrel.inference.records import PredictionRecords
from kestrel.inference.scoring import Scorer
from kestrel.inference.servicer import InferenceServicer
from kestrel.inference.serving import LifecycleFollower, ServingState, champion_version
from kestrel.inference.settings import InferenceSettings
from kestrel.inference.stream import StreamScorer
from kestrel.model.triton_config import INPUT
from kestrel.online_store import OnlineStore
from kestrel.online_store.client import client_for

log = structlog.get_logger()


class ConfigurationError(KestrelError):
    """The model and the feature set do not fit together: the service must not start."""


def api_components(rt: Runtime[InferenceSettings]) -> list[Any]:
    """Producer, Triton, Redis, the prediction publisher, then the gRPC server (intake: started last)."""
    s, fs = rt.settings, load_feature_set(rt.settings.feature_set)
    records, out, model = _backbone(rt, fs, "api")
    redis = client_for(s)
    store = OnlineStore(redis, fs, prefix=s.key_prefix, max_age_ms=int(s.max_feature_age_s * 1000))
    publisher = PredictionPublisher(
        out,
        capacity=s.publish_buffer,
        batch=s.publish_batch,
        block_s=s.publish_block_s,
        delivery_timeout_s=s.delivery_timeout_s,
        grace_s=s.publish_grace_s,
    )
    scorer = Scorer(
        OnlineFeatures(store),
        RequestFeatures(fs),
        FallbackModel(model, s.fallback_score),
        records,
        publisher.put,
        threshold=s.threshold,
        feature_set_version=fs.version_id,
    )
    coalescer = Coalescer(
        scorer, max_rows=min(s.coalesce_max_rows, s.triton_max_rows), max_in_flight=s.coalesce_in_flight
    )
    servicer = InferenceServicer(
        scorer,
        coalescer,
        Limits(),
        s.admission("inference"),
        max_batch=s.max_batch_requests,
        stream_window=s.stream_window,
    )
    service = ServiceBinding(
        servicer,
        inference_pb2_grpc.add_InferenceServiceServicer_to_server,
        inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
    )
    # The publisher stops after the server, so answered predictions still reach the log.
    follow = _follower(rt, model, lambda state: None)
    return [out, CheckedModel(model, fs), *follow, Closing(redis), publisher, GrpcServer(s.grpc_server(), [service])]


def scorer_components(rt: Runtime[InferenceSettings]) -> list[Any]:
    """Producer, Triton, then the consumer of feature vectors (intake last); HTTP /healthz and /readyz."""
    s, fs = rt.settings, load_feature_set(rt.settings.feature_set)
    assert rt.topics is not None
    vectors = rt.topics.bind(s.features_topic)
    records, out, model = _backbone(rt, fs, "stream")
    shadow = _triton(
        s, version="", circuit="triton shadow"
    )  # its own breaker: a bad challenger never trips the champion
    scorer = StreamScorer(
        rt.topics.serde(vectors),
        records,
        model,
        out,
        fs,
        threshold=s.threshold,
        concurrency=s.scorer_concurrency,
        delivery_timeout_s=s.delivery_timeout_s,
        shadow=(shadow, records.with_source("shadow")),
    )
    rt.ready_when(lambda: scorer.healthy is not False)

    def serve(state: ServingState) -> None:
        scorer.shadow_version = state.challenger

    follow = _follower(rt, model, serve)
    consumer = batch_consumer(rt, [vectors], s.group_id, scorer, out)
    return [out, CheckedModel(model, fs), CheckedModel(shadow, fs), *follow, consumer]


def _follower(rt: Runtime[InferenceSettings], model: TritonModel, serve: Any) -> list[Any]:
    """The lifecycle follower (watched), which points `model` at the champion and tells `serve` the state."""
    s = rt.settings
    if not s.follow_lifecycle:
        return []
    assert rt.topics is not None
    lifecycle = rt.topics.bind(s.lifecycle_topic)

    def changed(state: ServingState) -> None:
        model.version = champion_version(state, s.model_version, model.version, model.ready_versions())
        serve(state)

    def new_consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **aiokafka_config(s))

    follower = LifecycleFollower(
        new_consumer, lifecycle.name, rt.topics.serde(lifecycle), ServingState(s.model_name), changed
    )
    return [rt.watch(follower, "lifecycle")]


def _backbone(
    rt: Runtime[InferenceSettings], fs: FeatureSet, source: str
) -> tuple[PredictionRecords, Any, TritonModel]:
    """What both deployables share: the prediction record builder, the producer and the Triton model."""
    s = rt.settings
    assert rt.topics is not None
    predictions = rt.topics.bind(s.predictions_topic)
    records = PredictionRecords(PredictionEncoder(rt.topics.serde(predictions), fs.names), predictions.name, source)
    return records, producer(rt, predictions), _triton(s, s.model_version, f"triton {s.triton_url}")


def _triton(s: InferenceSettings, version: str, circuit: str) -> TritonModel:
    breaker = CircuitBreaker(circuit, failures=s.breaker_failures, reset_s=s.breaker_reset_s)
    return TritonModel(
        s.triton_url,
        s.model_name,
        version,
        timeout_s=s.triton_timeout_s,
        max_rows=s.triton_max_rows,
        breaker=breaker,
        ssl=s.triton_ssl,
    )


class CheckedModel:
    """Opens the Triton channel and checks the model fits the feature set: a model without the FEATURES input, or
    taking another number of features, is a deployment error; Triton (or the model) not being up yet is not: the
    breaker covers calls meanwhile."""

    def __init__(self, model: TritonModel, fs: FeatureSet) -> None:
        self.model, self._fs = model, fs

    async def start(self) -> None:
        await self.model.start()
        try:
            width = await self.model.input_width()
        except InferenceServerException as exc:
            log.warning("model_width_unchecked", model=self.model.name, error=str(exc))
            return
        if width is None:
            raise ConfigurationError(f"model {self.model.name} has no {INPUT} input: not a Kestrel scoring model")
        if width != len(self._fs.names):
            raise ConfigurationError(
                f"model {self.model.name} takes {width} features but feature set "
                f"{self._fs.version_id} has {len(self._fs.names)}"
            )

    async def stop(self) -> None:
        await self.model.close()
