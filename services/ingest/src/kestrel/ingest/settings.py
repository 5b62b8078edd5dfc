"""Ingest settings (env prefix KESTREL_INGEST_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.grpc.server import GrpcServerSettings
from kestrel.common.settings import KafkaSettings


class IngestSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_INGEST_")

    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    max_concurrent_rpcs: int = 1024
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_client_cafile: str | None = None
    auth_tokens: list[SecretStr] = []
    """Bearer tokens accepted on every RPC (JSON list in the environment); empty disables auth."""
    events_topic: str = "kestrel.events.v1"
    delivery_timeout_s: float = 10.0
    """How long a call waits for the broker's ack before answering UNAVAILABLE."""
    stream_chunk: int = 500
    """PublishStream reads this many events, publishes them, and only then reads more (bounded memory)."""
    max_future_skew_s: int = 300
    max_event_bytes: int = 16_384
    dead_letter_rejects: bool = True
    """Also write rejected events to kestrel.dlq.ingest.v1 for audit (callers get the error either way)."""

    def grpc_server(self) -> GrpcServerSettings:
        return GrpcServerSettings(
            host=self.grpc_host,
            port=self.grpc_port,
            max_concurrent_rpcs=self.max_concurrent_rpcs,
            tls_certfile=self.tls_certfile,
            tls_keyfile=self.tls_keyfile,
            tls_client_cafile=self.tls_client_cafile,
            auth_tokens=self.auth_tokens,
        )
