"""Migration discovery (unit) and the shipped migrations' presence."""

from __future__ import annotations

from pathlib import Path

from kestrel.devstack.migrations import discover
from kestrel.devstack.paths import migrations_dir


def test_migrations_run_in_name_order_and_only_sql(tmp_path: Path) -> None:
    for name in ("0002_b.sql", "0001_a.sql", "README.md", "0010_c.sql"):
        (tmp_path / name).write_text(f"-- {name}\n")
    assert [m.name for m in discover(tmp_path)] == ["0001_a.sql", "0002_b.sql", "0010_c.sql"]


def test_checksum_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    first = discover(tmp_path)[0].checksum
    (tmp_path / "0001_a.sql").write_text("SELECT 2;")
    assert discover(tmp_path)[0].checksum != first


def test_repository_ships_the_initial_schema() -> None:
    sql = (migrations_dir() / "0001_init.sql").read_text()
    for table in ("predictions", "labels", "drift_reports", "model_registry"):
        assert f"CREATE TABLE {table} (" in sql
    assert "PARTITION BY RANGE (event_time)" in sql
