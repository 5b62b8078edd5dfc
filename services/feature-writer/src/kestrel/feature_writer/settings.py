"""Feature-writer settings (env prefix KESTREL_FEATURE_WRITER_, shared fallback KESTREL_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.kafka import ConsumerOptions
from kestrel.common.online_store import DEFAULT_PREFIX
from kestrel.common.settings import KafkaSettings


class FeatureWriterSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_FEATURE_WRITER_")

    redis_url: str = "redis://127.0.0.1:6379/0"
    """redis:// or rediss:// (TLS); put the password in redis_password, not in the URL."""
    redis_password: SecretStr | None = None
    redis_cluster: bool = False
    """Redis Cluster: script calls are grouped per hash slot (keys carry the entity as hash tag)."""
    redis_timeout_s: float = Field(5.0, gt=0)
    key_prefix: str = DEFAULT_PREFIX
    ttl_s: int = Field(7 * 86_400, ge=0)
    """Entities with no newer vector for this long drop out of the store (0: never); refreshed on each write."""
    features_topic: str = "kestrel.features.v1"
    group_id: str = "kestrel-feature-writer"
    max_batch: int = Field(2000, ge=1)
    """Records per consumer batch: one Redis round trip each, and the bound on what is held in memory."""
    script_chunk: int = Field(64, ge=1)
    """Vectors per Redis script call: a call blocks Redis ~10 us per vector, so readers wait that long at most."""
    retry_initial_s: float = Field(0.1, gt=0)
    retry_max_s: float = Field(10.0, gt=0)
    """Backoff bounds while Redis (or the dead-letter topic) is down; consumption pauses meanwhile."""
    session_timeout_ms: int = Field(10_000, ge=1000)
    """How soon the group hands a dead replica's partitions to the others."""
    feature_set: str | None = "card"
    """Vectors of this feature set's current version must carry exactly its features (others are dead-lettered);
    vectors of other versions are stored as they come. Empty or unset: no check."""
    health_port: int = 8080
    """HTTP /healthz (the consumer loop runs) and /readyz (started, Redis answered); 0 disables."""

    def consumer_options(self) -> ConsumerOptions:
        return ConsumerOptions(max_batch=self.max_batch, retry_initial_s=self.retry_initial_s,
                               retry_max_s=self.retry_max_s, session_timeout_ms=self.session_timeout_ms,
                               heartbeat_interval_ms=min(1000, self.session_timeout_ms // 3))
