"""PostgreSQL over TLS: the DSN carries it (sslmode, sslrootcert), so the logger's start-up probe and its pool speak
TLS with no setting of their own; a real server with ssl=on and a certificate from a throwaway CA."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from kestrel.devstack.pki import Pki, available, make_pki
from kestrel.devstack.postgres import PostgresServer
from kestrel.prediction_logger.service import postgres
from kestrel.prediction_logger.settings import PredictionLoggerSettings

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not available(), reason="needs the openssl command")]


class TlsPostgres(PostgresServer):
    """postgres with ssl=on; the key is copied into its home, owned by the server's account, mode 0600 (PostgreSQL
    refuses a key others can read)."""

    name = "postgres-tls"

    def __init__(self, state_dir: Path, pki: Pki) -> None:
        super().__init__(state_dir)
        self.pki = pki

    async def _prepare(self) -> None:
        await super()._prepare()
        for source, target in ((self.pki.server_cert, "server.crt"), (self.pki.server_key, "server.key")):
            shutil.copy(source, self.home / target)
            (self.home / target).chmod(0o600)
            if self._account is not None:
                os.chown(self.home / target, self._account.pw_uid, self._account.pw_gid)

    def _command(self) -> list[str]:
        tls = {
            "ssl": "on",
            "ssl_cert_file": str(self.home / "server.crt"),
            "ssl_key_file": str(self.home / "server.key"),
        }
        return [*super()._command(), *[arg for k, v in tls.items() for arg in ("-c", f"{k}={v}")]]


@pytest.fixture(scope="module")
async def server(kestrel_state_dir: Path) -> AsyncIterator[TlsPostgres]:
    pki = make_pki(kestrel_state_dir / "pki-postgres")
    server = TlsPostgres(kestrel_state_dir, pki)
    server.die_with_parent = True
    await server.start()
    yield server
    await server.stop()


def _dsn(server: TlsPostgres, **query: str) -> str:
    return server.dsn + "?" + "&".join(f"{k}={v}" for k, v in query.items())


async def test_verify_full_with_the_ca_gives_an_encrypted_session(server):
    conn = await asyncpg.connect(_dsn(server, sslmode="verify-full", sslrootcert=str(server.pki.ca)), timeout=10)
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    finally:
        await conn.close()


async def test_a_server_not_signed_by_the_given_ca_is_refused(server, tmp_path):
    stranger = make_pki(tmp_path / "stranger")
    with pytest.raises(Exception, match="(?i)certificate"):
        await asyncpg.connect(_dsn(server, sslmode="verify-full", sslrootcert=str(stranger.ca)), timeout=10)


async def test_the_services_start_up_probe_connects_over_tls(server):
    settings = PredictionLoggerSettings(
        postgres_dsn=SecretStr(_dsn(server, sslmode="verify-full", sslrootcert=str(server.pki.ca)))
    )
    await postgres(settings).probe()
