"""Typed service settings read from the environment, with a fail-fast loader."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:
    from kestrel.common.admission import Admission
    from kestrel.common.grpc.server import GrpcServerSettings
    from kestrel.common.kafka import ConsumerOptions

S = TypeVar("S", bound=BaseSettings)

GLOBAL_PREFIX = "KESTREL_"


class KestrelSettings(BaseSettings):
    """Base for every service: KESTREL_<SERVICE>_<FIELD> wins, KESTREL_<FIELD> is the shared fallback.

    The fallback lets one stack.env (KESTREL_KAFKA_BOOTSTRAP=...) configure every service at once,
    while a deployment can still point one service elsewhere.
    """

    model_config = SettingsConfigDict(extra="ignore", validate_default=True, use_attribute_docstrings=True)

    log_format: Literal["auto", "json", "console"] = "auto"
    """json in containers, console on a TTY; auto picks by isatty."""
    log_level: str = "INFO"
    metrics_port: int = 9100
    """Prometheus /metrics port; 0 disables the endpoint."""
    startup_deadline_s: float = Field(30.0, ge=0)
    """How long start-up waits for an unreachable dependency (Kafka, Redis, Triton) before exiting non-zero."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix=GLOBAL_PREFIX, case_sensitive=False)
        return init_settings, env_settings, shared, file_secret_settings


class KafkaSettings(KestrelSettings):
    """Connection settings for the broker, passed through to both Kafka clients."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_linger_ms: float = 0.0
    """Producer batching delay; 0 favours latency (batches still form while requests are in flight)."""
    schema_registry_url: str | None = None
    """Confluent-compatible registry; None uses the file registry built from schemas/."""
    schema_registry_store: str | None = None
    """File registry only: a shared JSON store so readers learn older writer schemas (the local stack sets it)."""
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None
    topic_prefix: str = ""
    """Prepended to every catalogue topic name (isolated test copies, multi-tenant clusters)."""


def setting_name(settings: BaseSettings, field: str) -> str:
    """The environment variable an operator sets for `field`: the service's own name when that is set,
    else the shared KESTREL_ fallback that stack.env and compose files use."""
    prefix = type(settings).model_config.get("env_prefix") or GLOBAL_PREFIX
    own = f"{prefix}{field}".upper()
    return own if own in os.environ or prefix == GLOBAL_PREFIX else f"{GLOBAL_PREFIX}{field}".upper()


def env_help(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, description) for each setting of `cls`, for `--help`."""
    prefix = cls.model_config.get("env_prefix") or GLOBAL_PREFIX
    rows = []
    for name, field in cls.model_fields.items():
        default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append((f"{prefix}{name}".upper(), default, (field.description or "").split("\n")[0]))
    return rows


def env_epilog(cls: type[BaseSettings]) -> str:
    """The `--help` epilog every command shows: its environment variables, defaults and what each is for."""
    rows = env_help(cls)
    width = max((len(name) for name, _, _ in rows), default=0)
    lines = [f"  {name:<{width}}  {doc or ''} [default: {default}]".rstrip() for name, default, doc in rows]
    return "configuration (environment; KESTREL_<SETTING> is the shared fallback):\n" + "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read settings once at start-up; exit with a readable message instead of a traceback."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", GLOBAL_PREFIX)
        lines = [f"invalid configuration for {cls.__name__}:"]
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {prefix}{field.upper()}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from exc


class GrpcSettings(KestrelSettings):
    """The gRPC front of a service (ingest, inference); grpc_server() hands it to kestrel.common.grpc.GrpcServer."""

    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    max_concurrent_rpcs: int = 1024
    max_events_in_flight: int = Field(50_000, ge=1)
    """Events (ingest) or scoring requests (inference) being handled at once; past it, calls are answered
    RESOURCE_EXHAUSTED at once with grpc-retry-pushback-ms instead of queueing (the bound on their memory)."""
    overload_retry_ms: int = Field(200, ge=1)
    """The retry advice in those answers."""
    tls_certfile: str | None = None
    """Server certificate (PEM): gRPC and the HTTP health endpoint then speak TLS only."""
    tls_keyfile: str | None = None
    tls_client_cafile: str | None = None
    """Set to require gRPC client certificates signed by this CA (mutual TLS; the health endpoint asks none)."""
    require_auth: bool = False
    """Refuse to start without auth_tokens: set it wherever the API must never run open (production)."""
    auth_tokens: list[SecretStr] = []
    """Bearer tokens accepted on every RPC but health (JSON list in the environment); empty disables auth
    unless require_auth is set, which then stops the start-up."""
    health_port: int = 0
    """HTTP /healthz and /readyz (HTTPS with tls_certfile) for probes that cannot speak gRPC over TLS; 0 disables."""
    workers: int = Field(1, ge=1)
    """Processes serving grpc_port together (SO_REUSEPORT, as gunicorn's workers): a parent starts them and
    ends when one does; worker i serves its metrics on METRICS_PORT + i."""
    grpc_reuseport: bool = False
    """Bind grpc_port with SO_REUSEPORT (the parent sets it for its workers; not named *_port, which the stack
    reads as a port to assign). Off, a second process on the port
    fails to start instead of sharing it unnoticed."""

    @field_validator("auth_tokens")
    @classmethod
    def _tokens_when_required(cls, tokens: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        if any(not t.get_secret_value().strip() for t in tokens):
            raise ValueError("an empty bearer token would admit any caller that sends an empty one")
        if info.data.get("require_auth") and not tokens:
            raise ValueError("no bearer tokens set while require_auth is on: refusing to serve the API unauthenticated")
        return tokens

    def admission(self, door: str) -> Admission:
        from kestrel.common.admission import Admission

        return Admission(door, self.max_events_in_flight, self.overload_retry_ms)

    def grpc_server(self) -> GrpcServerSettings:
        from kestrel.common.grpc.server import GrpcServerSettings  # grpc is imported only by gRPC services

        return GrpcServerSettings(
            host=self.grpc_host,
            port=self.grpc_port,
            max_concurrent_rpcs=self.max_concurrent_rpcs,
            tls_certfile=Path(self.tls_certfile) if self.tls_certfile else None,
            tls_keyfile=Path(self.tls_keyfile) if self.tls_keyfile else None,
            tls_client_cafile=Path(self.tls_client_cafile) if self.tls_client_cafile else None,
            auth_tokens=self.auth_tokens,
            reuse_port=self.grpc_reuseport,
        )


class ConsumerSettings(KestrelSettings):
    """A batch consumer's knobs; consumer_options() hands them to kestrel.common.kafka.BatchConsumer."""

    max_batch: int = Field(2000, ge=1)
    """Records per consumer batch: the bound on what is held in memory."""
    retry_initial_s: float = Field(0.1, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    """Backoff bounds while a dependency (or the dead-letter topic) is down; consumption pauses meanwhile."""
    max_attempts: int = Field(8, ge=1)
    """Failures of one batch, other than a dependency being down, before it is dead-lettered whole."""
    session_timeout_ms: int = Field(10_000, ge=1000)
    """How soon the group hands a dead replica's partitions to the others."""

    def consumer_options(self) -> ConsumerOptions:
        from kestrel.common.kafka import ConsumerOptions

        return ConsumerOptions(
            max_batch=self.max_batch,
            retry_initial_s=self.retry_initial_s,
            retry_max_s=self.retry_max_s,
            max_attempts=self.max_attempts,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=min(1000, self.session_timeout_ms // 3),
        )
