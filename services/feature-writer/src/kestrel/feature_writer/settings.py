"""Feature-writer settings (env prefix KESTREL_FEATURE_WRITER_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field
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
