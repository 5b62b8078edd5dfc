"""Redis behind AUTH and TLS, as a production Redis runs: client_for connects with the configured password and CA,
and nothing connects without them (a real redis-server with requirepass and a TLS port)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.exceptions
from pydantic import SecretStr

from kestrel.devstack.pki import Pki, available, make_pki
from kestrel.devstack.ports import HOST, wait_connectable
from kestrel.devstack.redis_server import RedisServer
from kestrel.online_store.client import client_for
from kestrel.online_store.settings import RedisSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not available() or shutil.which("redis-server") is None, reason="needs openssl and redis"),
]

PASSWORD = "r3dis-s3cret"


class SecuredRedis(RedisServer):
    """redis-server with requirepass and, with a PKI, TLS only (its plaintext port is off)."""

    name = "redis-secured"

    def __init__(self, state_dir: Path, pki: Pki | None) -> None:
        super().__init__(state_dir)
        self.pki = pki

    @property
    def settings(self) -> RedisSettings:
        scheme = "rediss" if self.pki else "redis"
        return RedisSettings(
            redis_url=f"{scheme}://{HOST}:{self.port}/0",
            redis_password=SecretStr(PASSWORD),
            redis_tls_cafile=str(self.pki.ca) if self.pki else None,
        )

    def _command(self) -> list[str]:
        argv = [*super()._command(), "--requirepass", PASSWORD]
        if self.pki is None:
            return argv
        argv[argv.index("--port") + 1] = "0"
        return argv + [
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.pki.server_cert),
            "--tls-key-file", str(self.pki.server_key),
            "--tls-ca-cert-file", str(self.pki.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    async def _probe(self) -> None:
        await wait_connectable(self.port)
        client = client_for(self.settings)
        try:
            await client.ping()
        finally:
            await client.aclose()


@pytest.fixture(scope="module", params=["auth", "auth+tls"])
async def secured(request, tmp_path_factory) -> AsyncIterator[SecuredRedis]:
    state = tmp_path_factory.mktemp(request.param.replace("+", "-"))
    server = SecuredRedis(state, make_pki(state / "pki") if "tls" in request.param else None)
    server.die_with_parent = True
    await server.start()
    yield server
    await server.stop()


async def _ping(settings: RedisSettings) -> bool:
    client = client_for(settings)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_the_configured_password_and_ca_connect(secured):
    assert await _ping(secured.settings)


@pytest.mark.parametrize("password", [None, "wrong"])
async def test_no_or_a_wrong_password_is_refused(secured, password):
    settings = secured.settings.model_copy(update={"redis_password": SecretStr(password) if password else None})
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
        await _ping(settings)


async def test_tls_port_refuses_plaintext_and_unknown_cas(secured):
    if secured.pki is None:
        pytest.skip("plaintext server")
    plaintext = secured.settings.model_copy(update={"redis_url": secured.settings.redis_url.replace("rediss", "redis")})
    plaintext = plaintext.model_copy(update={"redis_tls_cafile": None})
    with pytest.raises(redis.exceptions.ConnectionError):
        await _ping(plaintext)
    system_cas = secured.settings.model_copy(update={"redis_tls_cafile": None})
    with pytest.raises(redis.exceptions.ConnectionError):
        await _ping(system_cas)
