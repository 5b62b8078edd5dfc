"""Ingest settings (env prefix KESTREL_INGEST_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import GrpcSettings, KafkaSettings


class IngestSettings(KafkaSettings, GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_INGEST_")

    grpc_port: int = 50051
    events_topic: str = "kestrel.events.v1"
    delivery_timeout_s: float = 10.0
    """How long a call waits for the broker's ack before answering UNAVAILABLE."""
    stream_chunk: int = 500
    """PublishStream reads this many events, publishes them, and only then reads more (bounded memory)."""
    stream_results_max: int = Field(10_000, ge=1)
    """PublishStream's answer lists every event up to this many results, then only events not accepted (up to as
    many again); `omitted` counts the rest, so a stream of any length is answered in bounded memory."""
    max_future_skew_s: int = 300
    max_event_bytes: int = 16_384
    dead_letter_rejects: bool = True
    """Also write rejected events to kestrel.dlq.ingest.v1 for audit (callers get the error either way)."""
