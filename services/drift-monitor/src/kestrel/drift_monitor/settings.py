"""Drift-monitor settings (env prefix KESTREL_DRIFT_MONITOR_, shared fallback KESTREL_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KafkaSettings


class DriftMonitorSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_DRIFT_MONITOR_")

    window_s: int = Field(3600, ge=1)
    """Tumbling event-time window per model version (aligned on the epoch): one report per window."""
    window_predictions: int = Field(1, ge=1)
    """Predictions per report: a version's closed windows are merged until they hold this many (1: one per window).

    With a short WINDOW_S, reports of about N predictions each; windows stay event-time, so the cut is a window's
    end, and a version whose traffic stops short of N keeps its last windows unreported."""
    allowed_lateness_s: int = Field(300, ge=0)
    """A window closes once every partition's newest event time is this far past its end (later ones: late)."""
    idle_partition_s: int = Field(600, ge=0)
    """A partition this far behind the newest event time, or silent, holds windows open no longer than that."""
    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """PostgreSQL URL: the prediction log is read from it and the reports written to it (never logged)."""
    postgres_timeout_s: float = Field(30.0, gt=0)
    """Connect and statement timeout (one window's rows are read in one statement)."""
    logger_group_id: str = "kestrel-prediction-logger"
    """The prediction logger's consumer group: a closed window is read once it has committed past the close."""
    logger_wait_s: float = Field(60.0, ge=0)
    """How long a close waits for the logger; then the report covers what is stored (log_complete false)."""
    model_repository: Path = Path("infra/triton/models")
    """Triton model repository: `<model>/<version>/` holds each version's artifact and its reference."""
    feature_set: str = "card"
    """Feature set in infra/features (or $KESTREL_FEATURES_DIR) whose definition gives the feature kinds."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level of the corrected p-values."""
    correction: Literal["benjamini-hochberg", "bonferroni"] = "benjamini-hochberg"
    """Multiple-testing correction across a window's features."""
    predictions_topic: str = "kestrel.predictions.v1"
    reports_topic: str = "kestrel.drift-reports.v1"
    events_topic: str = "kestrel.events.v1"
    """Raw events: their monitored columns (channel, country, merchant category, currency, amount) are the events
    subject, in windows of the same rule as the predictions'."""
    events_model: str = "kestrel_fraud"
    """Model in MODEL_REPOSITORY whose newest version with an events reference (its training events) the events
    subject is compared with."""
    group_id: str = "kestrel-drift-monitor"
    """Consumer group; the window state's changelog is named after it."""
    events_group_id: str = "kestrel-drift-monitor-events"
    """Consumer group of the events subject (its own stateful loop and changelog)."""
    batch_max: int = Field(2000, ge=1, le=100_000)
    poll_timeout_ms: int = Field(100, ge=1)
    commit_interval_s: float = Field(1.0, gt=0)
    """How often reports are awaited, the window state written to the changelog and offsets committed."""
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int = Field(1_000, ge=100)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    """Must exceed the longest close (logger wait + read + statistics): the loop waits for reports to commit."""
    changelog_replication: int = Field(3, ge=1)
    """Replication of the window state's changelog topic; capped at the number of brokers."""
    delivery_timeout_s: float = Field(30.0, gt=0)
    retry_max_s: float = Field(30.0, gt=0)
    """Backoff bound while PostgreSQL or Kafka is down (the window is closed again once they answer)."""
    health_port: int = 8080
    """HTTP /healthz (the stream loop runs) and /readyz (started and running); 0 disables."""

    @model_validator(mode="after")
    def _timings(self) -> DriftMonitorSettings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        if (self.logger_wait_s + 2 * self.postgres_timeout_s) * 1000 >= self.max_poll_interval_ms:
            raise ValueError("max_poll_interval_ms must exceed logger_wait_s plus two postgres_timeout_s")
        return self
