"""RedisSettings: the online store's connection and key prefix, a mixin for a service's settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from kestrel.common.settings import KestrelSettings
from kestrel.online_store.layout import DEFAULT_PREFIX


class RedisSettings(KestrelSettings):
    """Connection to the Redis online store (client_for() builds the client) and its key prefix."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """redis:// or rediss:// (TLS); put the password in redis_password, not in the URL."""
    redis_password: SecretStr | None = None
    """Redis AUTH (requirepass, or an ACL user's password with the user in the URL: redis://user@host)."""
    redis_tls_cafile: str | None = None
    """rediss:// only: the CA that signed the server's certificate (default: the system's trusted CAs)."""
    redis_cluster: bool = False
    """Redis Cluster: script calls are grouped per hash slot (keys carry the entity as hash tag)."""
    redis_timeout_s: float = Field(5.0, gt=0)
    key_prefix: str = DEFAULT_PREFIX
    """Online store keys are <key_prefix>:<feature set version>:{<entity>}."""
