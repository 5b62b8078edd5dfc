"""Typed service settings read from the environment, with a fail-fast loader."""

from __future__ import annotations

import sys
from typing import Literal, TypeVar

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)

GLOBAL_PREFIX = "KESTREL_"


class KestrelSettings(BaseSettings):
    """Base for every service: KESTREL_<SERVICE>_<FIELD> wins, KESTREL_<FIELD> is the shared fallback.

    The fallback lets one stack.env (KESTREL_KAFKA_BOOTSTRAP=...) configure every service at once,
    while a deployment can still point one service elsewhere.
    """

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    log_format: Literal["auto", "json", "console"] = "auto"
    """json in containers, console on a TTY; auto picks by isatty."""
    log_level: str = "INFO"
    metrics_port: int = 9100
    """Prometheus /metrics port; 0 disables the endpoint."""

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


def load_settings(cls: type[S], **overrides: object) -> S:
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
