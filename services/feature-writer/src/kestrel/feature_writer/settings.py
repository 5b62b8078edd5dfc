"""Feature-writer settings (env prefix KESTREL_FEATURE_WRITER_, shared fallback KESTREL_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import ConsumerSettings, KafkaSettings
from kestrel.online_store.settings import RedisSettings


class FeatureWriterSettings(KafkaSettings, RedisSettings, ConsumerSettings):
    """Redis connection (redis_*, key_prefix) and consumer knobs (max_batch, retry_*, session_timeout_ms)
    come from the mixins in kestrel.common.settings."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_FEATURE_WRITER_")

    ttl_s: int = Field(7 * 86_400, ge=0)
    """Entities with no newer vector for this long drop out of the store (0: never); refreshed on each write."""
    features_topic: str = "kestrel.features.v1"
    group_id: str = "kestrel-feature-writer"
    script_chunk: int = Field(16, ge=1)
    """Vectors per Redis script call: a call blocks Redis ~10 us per vector, so readers wait that long at most."""
    feature_set: str | None = "card"
    """Vectors of this feature set's current version must carry exactly its features (others are dead-lettered);
    vectors of other versions are stored as they come when they carry their features by name (packed, their
    names are unknown here: dead-lettered). Empty or unset: no check, and only vectors by name are stored."""
    health_port: int = 8080
    """HTTP /healthz (the consumer loop runs) and /readyz (started, Redis answered); 0 disables."""
    redis_wait_replicas: int = Field(0, ge=0)
    """After each batch, WAIT until this many Redis replicas hold it before its offsets are committed; fewer
    within redis_wait_timeout_ms: the batch is retried and the writer reports not ready (0: no WAIT; then the
    primary's AOF is what keeps acknowledged writes, see docs/online-store.md). Standalone Redis only."""
    redis_wait_timeout_ms: int = Field(500, gt=0)
    """How long one WAIT may block; below redis_timeout_s, or the client would give up first."""

    @model_validator(mode="after")
    def _wait_fits(self) -> Self:
        if self.redis_wait_replicas and self.redis_cluster:
            raise ValueError("redis_wait_replicas needs a standalone Redis with replicas, not redis_cluster")
        if self.redis_wait_timeout_ms >= self.redis_timeout_s * 1000:
            raise ValueError("redis_wait_timeout_ms must be below redis_timeout_s, or the client gives up first")
        return self
