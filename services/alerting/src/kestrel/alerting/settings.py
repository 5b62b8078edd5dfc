"""Alerting service settings (env prefix KESTREL_ALERTING_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KafkaSettings


class AlertingSettings(KafkaSettings):
    """Broker connection and topic prefix come from KafkaSettings; the rest is the alerting service's own."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_ALERTING_")

    rules_file: str = "infra/alerting/rules.yaml"
    """Rules, routes, inhibition and receivers (validated at start; a bad file exits with the rule and field)."""
    app_id: str = "kestrel-alerting"
    """faust app id: the consumer group and the prefix of the internal and changelog topics."""
    drift_reports_topic: str = "kestrel.drift-reports.v1"
    alerts_topic: str = "kestrel.alerts.v1"
    api_port: int = 9093
    """HTTP silences API (Alertmanager's /api/v2/silences shape; Alertmanager's port); 0 disables."""
    partitions: int = Field(3, ge=1)
    """Partitions of the internal topics and tables: the most replicas that share the work."""
    tick_interval_s: float = Field(1.0, gt=0)
    """How often time-only transitions (`for`, keep_firing_for) and group flushes are checked."""
    signals_interval_s: float = Field(15.0, gt=0)
    """How often consumer lag and dead-letter rates are read from the broker (by one replica only)."""
    notification_log_keep: int = Field(32, ge=1)
    """Sent notifications remembered per group, beyond the unsent ones, to recognise a replayed flush."""
    commit_interval_s: float = Field(2.8, gt=0)
    """How often the offsets of processed records are committed (faust's broker_commit_every); a replica that
    dies replays at most this much, idempotently."""
    session_timeout_ms: int = Field(10_000, ge=1000)
    """How soon the group hands a dead replica's partitions to the others."""
    data_dir: str = "/tmp/kestrel-alerting"
    """faust's data directory (tables are in memory, restored from their changelogs)."""
    health_port: int = 8080
    """HTTP /healthz (the faust app runs) and /readyz (partitions assigned and tables recovered); 0 disables."""
