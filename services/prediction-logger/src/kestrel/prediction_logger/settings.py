"""Prediction-logger settings (env prefix KESTREL_PREDICTION_LOGGER_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import ConsumerSettings, KafkaSettings


class PredictionLoggerSettings(KafkaSettings, ConsumerSettings):
    """Consumer knobs (max_batch, retry_*, session_timeout_ms) come from the mixins in kestrel.common.settings."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_PREDICTION_LOGGER_")

    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """PostgreSQL URL (it may hold a password: never logged)."""
    postgres_timeout_s: float = Field(10.0, gt=0)
    """Connect and statement timeout; a batch that takes longer is retried."""
    predictions_topic: str = "kestrel.predictions.v1"
    labels_topic: str = "kestrel.labels.v1"
    group_id: str = "kestrel-prediction-logger"
    retention_days: int = Field(90, ge=1)
    """Daily partitions whose whole day is older than this are dropped."""
    partitions_ahead: int = Field(3, ge=1)
    """Daily partitions kept created ahead of today (UTC), so that inserts never wait on DDL."""
    maintenance_interval_s: float = Field(3600.0, gt=0)
    """How often partitions are created ahead and expired ones dropped."""
    health_port: int = 8080
    """HTTP /healthz (the consumer loop runs) and /readyz (started, PostgreSQL answered); 0 disables."""
