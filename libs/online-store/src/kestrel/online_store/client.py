"""Redis clients for the online store: bytes replies, bounded timeouts, standalone or Redis Cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

if TYPE_CHECKING:
    from kestrel.online_store.settings import RedisSettings


def redis_client(
    url: str, *, password: str | None = None, cluster: bool = False, timeout_s: float = 2.0, **options: Any
) -> Redis | RedisCluster:
    """A client for `redis://` or `rediss://` (TLS) URLs; the password may also be in the URL.

    Connection errors are retried twice, quickly: after a Redis restart every pooled connection is
    stale, and each would otherwise fail one call. Every store command is idempotent, so resending is safe.
    """
    kwargs: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.01), 2),
        **options,
    }
    if password is not None:
        kwargs["password"] = password
    if cluster:
        return RedisCluster.from_url(url, **kwargs)
    return Redis.from_url(url, **kwargs)


def client_for(settings: RedisSettings) -> Redis | RedisCluster:
    """The online store's client for a service's RedisSettings (decode_responses off: values are packed bytes)."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    tls = {"ssl_ca_certs": settings.redis_tls_cafile} if settings.redis_tls_cafile else {}
    return redis_client(
        settings.redis_url, password=password, cluster=settings.redis_cluster, timeout_s=settings.redis_timeout_s, **tls
    )
