"""RedisSettings: a mixin whose fields take the shared KESTREL_ fallback; client_for builds the configured client."""

from pydantic_settings import SettingsConfigDict
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from kestrel.common.settings import KafkaSettings
from kestrel.online_store import DEFAULT_PREFIX
from kestrel.online_store.client import client_for
from kestrel.online_store.settings import RedisSettings


class Service(KafkaSettings, RedisSettings):
    model_config = SettingsConfigDict(env_prefix="KESTREL_SVC_")


def test_mixin_fields_take_the_shared_fallback(monkeypatch):
    monkeypatch.setenv("KESTREL_REDIS_URL", "redis://shared:6379/0")
    assert Service().redis_url == "redis://shared:6379/0"
    monkeypatch.setenv("KESTREL_SVC_REDIS_URL", "redis://own:6379/0")
    assert Service().redis_url == "redis://own:6379/0"
    assert RedisSettings().key_prefix == DEFAULT_PREFIX


async def test_client_for_passes_password_timeout_and_cluster_mode():
    s = Service(redis_url="redis://store:6390/2", redis_password="hunter2", redis_timeout_s=1.5)
    client = client_for(s)
    kwargs = client.connection_pool.connection_kwargs
    assert isinstance(client, Redis) and (kwargs["host"], kwargs["port"], kwargs["db"]) == ("store", 6390, 2)
    assert kwargs["password"] == "hunter2" and kwargs["socket_timeout"] == 1.5
    assert kwargs["decode_responses"] is False
    await client.aclose()
    assert isinstance(client_for(Service(redis_cluster=True)), RedisCluster)
