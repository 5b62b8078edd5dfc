"""Inference settings (env prefix KESTREL_INFERENCE_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import ConsumerSettings, GrpcSettings, KafkaSettings
from kestrel.online_store.settings import RedisSettings


class InferenceSettings(KafkaSettings, GrpcSettings, RedisSettings, ConsumerSettings):
    """Both deployables read it: the API (`kestrel-inference`) and the stream scorer (`kestrel-inference-scorer`).
    gRPC front (grpc_*, tls_*, auth_tokens), Redis (redis_*, key_prefix) and the scorer's consumer knobs
    (retry_*, session_timeout_ms) come from the mixins in kestrel.common.settings."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_INFERENCE_")

    # gRPC API
    grpc_port: int = 50052
    max_concurrent_rpcs: int = 2048
    max_events_in_flight: int = Field(8192, ge=1)
    """Requests being scored at once (a PredictBatch counts its events); past it RESOURCE_EXHAUSTED at once."""
    max_batch_requests: int = Field(1024, ge=1)
    """Most requests in one PredictBatch call (INVALID_ARGUMENT above it)."""
    coalesce_max_rows: int = Field(256, ge=1)
    coalesce_in_flight: int = Field(1, ge=1)
    """Concurrent unary Predicts are scored together: at most this many batches (of up to coalesce_max_rows)
    at once; what arrives meanwhile waits for the next one. Fewer in flight: bigger batches, less CPU per call
    (measured at concurrency 64 on 2 cores: 1 in flight 1,603/s with 15.9 rows per batch, 2: 1,186/s,
    4: 569-938/s with 2.7 rows). A lone call never waits either way."""
    stream_window: int = Field(256, ge=1)
    """PredictStream scores up to this many requests that have already arrived together (one Redis and one
    Triton call); reading pauses while that many wait (HTTP/2 flow control pushes back on the client)."""

    # Online features
    redis_timeout_s: float = Field(0.25, gt=0)
    """Per read; a slow or dead Redis means default features (flagged), never a hung request."""
    feature_set: str = "card"
    max_feature_age_s: float = Field(86_400.0, gt=0)
    """Online features older than this are served but flagged stale_features (and degraded)."""

    # Triton
    triton_url: str = "127.0.0.1:8001"
    """host:port of Triton's gRPC endpoint."""
    triton_ssl: bool = False
    model_name: str = "kestrel_fraud"
    model_version: str = ""
    """Set: pin this version. Empty: with follow_lifecycle off, Triton's latest ready version (its version policy
    decides); with it on, the highest version Triton has ready at start, kept until the lifecycle names a
    champion (so a challenger loaded for its shadow never answers). Either way, a champion named on the
    lifecycle topic (promoted, rolled_back) takes over while follow_lifecycle is on."""
    follow_lifecycle: bool = True
    """Follow kestrel.model-lifecycle.v1: ask Triton for the champion it names, and (stream scorer) score a
    challenger in shadow beside it, logged with source=shadow. Off: model_version alone decides."""
    lifecycle_topic: str = "kestrel.model-lifecycle.v1"
    triton_timeout_s: float = Field(1.0, gt=0)
    """Deadline of each Triton call."""
    triton_max_rows: int = Field(1024, ge=1)
    """Rows per Triton request; must not exceed the model's max_batch_size."""
    breaker_failures: int = Field(5, ge=1)
    """Consecutive failed Triton calls that open the circuit (calls then fail fast)."""
    breaker_reset_s: float = Field(2.0, gt=0)
    """How long the circuit stays open before one trial call is let through."""
    fallback_score: float | None = Field(None, ge=0, le=1)
    """Set to answer with this score (flagged degraded, fallback_score) while Triton is unavailable instead of
    UNAVAILABLE. The predictions topic records these with model_name "fallback"."""
    threshold: float = Field(0.5, ge=0, le=1)
    """Decision threshold: decision = score >= threshold."""

    # Prediction records
    predictions_topic: str = "kestrel.predictions.v1"
    publish_buffer: int = Field(50_000, ge=1)
    """Prediction records waiting for Kafka (the API). Full: Predict waits for room (backpressure, counted in
    kestrel_inference_publish_blocked_total) and answers UNAVAILABLE after publish_block_s."""
    publish_block_s: float = Field(5.0, gt=0)
    publish_batch: int = Field(2000, ge=1)
    publish_grace_s: float = Field(10.0, gt=0)
    """On shutdown, how long buffered prediction records may take to reach Kafka; what is left then is dropped,
    counted in kestrel_inference_publish_dropped_total. Keep it inside the orchestrator's termination grace."""
    delivery_timeout_s: float = Field(30.0, gt=0)

    # Stream scorer
    features_topic: str = "kestrel.features.v1"
    group_id: str = "kestrel-inference-scorer"
    max_batch: int = Field(4096, ge=1)
    """Feature vectors per consumer batch; scored in requests of triton_max_rows rows."""
    scorer_concurrency: int = Field(4, ge=1)
    """Triton requests in flight per batch (Triton's batcher merges them)."""
    health_port: int = 8080
    """HTTP /healthz and /readyz (HTTPS with tls_certfile); 0 disables. The API answers gRPC health besides."""
