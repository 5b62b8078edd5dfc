"""Simulator settings (env prefix KESTREL_SIM_, shared fallback KESTREL_): where traffic goes."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KafkaSettings


class SimulatorSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_SIM_")

    events_topic: str = "kestrel.events.v1"
    labels_topic: str = "kestrel.labels.v1"
    ingest_addr: str = "127.0.0.1:50051"
    """host:port of the ingest gRPC API (used with --to ingest)."""
    ingest_token: SecretStr | None = None
    """Bearer token for ingest; read from the environment only, so it never shows in `ps`."""
    ingest_tls_cafile: str | None = None
    """CA bundle to verify ingest's certificate; setting it (or a client cert) switches TLS on."""
    ingest_tls_certfile: str | None = None
    ingest_tls_keyfile: str | None = None
    ingest_timeout_s: float = 10.0
    ingest_concurrency: int = 4
    """PublishBatch calls in flight at once: one grpc.aio channel tops out near 2k calls/s per core."""
    ingest_retries: int = 5
    """Retries of a batch answered UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED."""
    max_in_flight: int = 200_000
    """Events handed to Kafka but not yet acknowledged before sending pauses."""
