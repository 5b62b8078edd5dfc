"""Migrations apply once, in order, and an edited applied migration is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from kestrel.devstack import migrations
from kestrel.devstack.migrations import MigrationError, discover
from kestrel.devstack.paths import migrations_dir

pytestmark = pytest.mark.integration


@pytest.fixture
async def scratch_dsn(postgres: Any) -> AsyncIterator[str]:
    """A database of this test's own on the session server."""
    name = f"t_{uuid4().hex}"
    admin = await asyncpg.connect(postgres.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def test_repository_migrations_apply_once(scratch_dsn: str) -> None:
    shipped = [m.name for m in discover(migrations_dir())]
    assert shipped[:3] == ["0001_init.sql", "0002_prediction_logger.sql", "0003_packed_features.sql"]
    assert await migrations.apply(scratch_dsn) == shipped  # every shipped migration, in name order
    assert await migrations.apply(scratch_dsn) == []


async def test_pending_migrations_run_in_order_each_in_its_transaction(scratch_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    assert await migrations.apply(scratch_dsn, tmp_path) == ["0001_a.sql"]
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (x int); INSERT INTO b VALUES (1);")
    (tmp_path / "0003_broken.sql").write_text("CREATE TABLE c (x int); SELECT nonsense;")
    with pytest.raises(MigrationError, match=r"0003_broken\.sql"):
        await migrations.apply(scratch_dsn, tmp_path)
    conn = await asyncpg.connect(scratch_dsn)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == ["0001_a.sql", "0002_b.sql"]
        assert await conn.fetchval("SELECT to_regclass('c')") is None  # rolled back with its migration
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(scratch_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    await migrations.apply(scratch_dsn, tmp_path)
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrations.apply(scratch_dsn, tmp_path)
