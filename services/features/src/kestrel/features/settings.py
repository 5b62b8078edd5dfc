"""Features settings (env prefix KESTREL_FEATURES_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KafkaSettings


class FeaturesSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_FEATURES_")

    feature_set: str = "card"
    """Name of the feature set in infra/features (or $KESTREL_FEATURES_DIR)."""
    group_id: str | None = None
    """Consumer group; default `kestrel-features.<set>.v<version>`, so a new version backfills on its own."""
    events_topic: str = "kestrel.events.v1"
    features_topic: str = "kestrel.features.v1"
    batch_max: int = Field(1000, ge=1, le=100_000)
    """Records processed per batch: with fetch sizes, the bound on records held in memory."""
    poll_timeout_ms: int = Field(100, ge=1)
    commit_interval_s: float = Field(1.0, gt=0)
    """How often vector acks are awaited, changed state is written to the changelog and offsets committed."""
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int = Field(1_000, ge=100)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    changelog_replication: int = Field(3, ge=1)
    """Replication of the state changelog topic; capped at the number of brokers."""
    evict_after_s: int = Field(2 * 86_400, ge=1)
    """Forget an entity once its newest event is this far behind its partition's newest event time."""
    max_future_skew_s: int = Field(300, ge=0)
    """Events further ahead of the wall clock are dead-lettered (ingest's bound); stream time never runs further."""
    delivery_timeout_s: float = Field(30.0, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    health_port: int = 8080
    """HTTP /healthz (the stream loop runs) and /readyz (started and running); 0 disables."""

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> FeaturesSettings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        return self

    def group(self, version_id: str) -> str:
        return self.group_id or f"kestrel-features.{version_id}"
