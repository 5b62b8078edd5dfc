"""Applies a directory of *.sql migrations (infra/postgres/migrations) in name order, each once, each in its own
transaction: the dev stack, the tests and `kestrel-db-migrate` in a real deployment share this one runner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from kestrel.common.errors import KestrelError

if TYPE_CHECKING:
    import asyncpg

log = structlog.get_logger()

_LOCK_KEY = 0x6B657374  # advisory lock: two runners (two test sessions) take turns
_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text        PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(KestrelError):
    """A migration failed, or an applied migration file was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in sorted(Path(directory).glob("*.sql"))]


async def apply(dsn: str, directory: Path) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when already up to date).

    asyncpg is imported here: kestrel-common does not depend on it, the services that talk to PostgreSQL do."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(_BOOKKEEPING)
        applied = {r["name"]: r["checksum"] for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")}
        done = []
        for migration in discover(directory):
            if _already_applied(migration, applied):
                continue
            await _apply_one(conn, migration)
            done.append(migration.name)
        return done
    finally:
        await conn.close()  # also releases the advisory lock


def _already_applied(migration: Migration, applied: dict[str, str]) -> bool:
    if migration.name not in applied:
        return False
    if applied[migration.name] != migration.checksum:
        raise MigrationError(f"{migration.name} changed after it was applied; add a new migration instead")
    return True


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    import asyncpg

    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", migration.name, migration.checksum
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{migration.name} failed: {exc}") from exc
    log.info("migration applied", migration=migration.name)
