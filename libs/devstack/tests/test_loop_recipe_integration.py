"""The loop's first champion, registered in a real PostgreSQL as `kestrel-stack up --demo` and tests/loop do."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from kestrel.devstack.loop import RULES, champion_copy, loop_settings, prepare, register_champion
from kestrel.registry.artifacts import checksum
from kestrel.registry.models import CHAMPION
from kestrel.registry.store import Registry

pytestmark = pytest.mark.integration


async def test_the_checked_in_model_becomes_the_registered_champion_with_its_reference_performance(
    postgres, tmp_path: Path
) -> None:
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    folder = champion_copy(tmp_path / "artifacts", model)
    await register_champion(postgres.dsn, folder, actor="test")
    conn = await asyncpg.connect(postgres.dsn)
    try:
        registry = Registry(conn)
        entry = await registry.get(model, "1")
        assert await registry.alias(model, CHAMPION) == "1"
    finally:
        await conn.close()
    assert entry is not None and entry.checksum == checksum(folder)
    assert entry.reference is not None and entry.reference["performance"]["overall"]["pr_auc"] > 0.8


async def test_prepare_writes_the_rules_registers_the_champion_and_points_the_services_at_them(
    postgres, tmp_path: Path
) -> None:
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    settings = await prepare(tmp_path, postgres.dsn, model, actor="test")
    assert settings == loop_settings(tmp_path / "loop")
    assert (tmp_path / "loop" / "rules.yaml").read_text() == RULES
    conn = await asyncpg.connect(postgres.dsn)
    try:
        assert await Registry(conn).alias(model, CHAMPION) == "1"
    finally:
        await conn.close()
