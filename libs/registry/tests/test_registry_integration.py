"""The registry on a real PostgreSQL: register, aliases, promote and roll back, lineage, the audit trail."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kestrel.registry import CHALLENGER, CHAMPION, REJECTED, NewVersion, RegistryError
from kestrel.registry.artifacts import checksum, describe
from kestrel.registry.store import Registry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = ROOT / "infra" / "triton" / "models" / "kestrel_fraud" / "1"
BIN = Path(sys.executable).parent


def new(model: str, pr_auc: float = 0.8, **extra: Any) -> NewVersion:
    return NewVersion(model, f"file:///m/{pr_auc}", f"sha-{pr_auc}", "card.v1", {"pr_auc": pr_auc}, **extra)


@pytest.fixture
async def registry(postgres: Any):
    conn = await asyncpg.connect(postgres.dsn)
    try:
        yield Registry(conn)
    finally:
        await conn.close()


@pytest.fixture
def model() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


async def test_versions_are_numbered_and_a_retried_registration_is_the_same_version(registry, model):
    first = await registry.register(new(model, 0.8), actor="trainer", reason="initial")
    second = await registry.register(new(model, 0.85, parent_version="1"), actor="trainer", reason="drift alert")
    assert (first.version, second.version) == ("1", "2") and second.parent_version == "1"
    again = await registry.register(new(model, 0.85, version="2"), actor="trainer", reason="job retried")
    assert again == second
    with pytest.raises(RegistryError, match="checksum"):
        await registry.register(new(model, 0.9, version="2"), actor="trainer", reason="other bytes")
    assert [v.version for v in await registry.versions(model)] == ["1", "2"]
    assert [v.version for v in await registry.lineage(model, "2")] == ["2", "1"]


async def test_concurrent_registrations_get_distinct_versions(postgres, model):
    async def one(i: int) -> str:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            return (await Registry(conn).register(new(model, 0.5 + i / 100), actor="t", reason="race")).version
        finally:
            await conn.close()

    assert sorted(await asyncio.gather(*(one(i) for i in range(6))), key=int) == ["1", "2", "3", "4", "5", "6"]


async def test_promote_moves_the_champion_and_rollback_restores_the_previous_one(registry, model):
    for pr_auc in (0.8, 0.85, 0.9):
        await registry.register(new(model, pr_auc), actor="trainer", reason="trained")
    assert await registry.promote(model, "1", actor="ops", reason="first model") is None
    await registry.set_alias(model, CHALLENGER, "2", actor="loop", reason="shadow")
    assert await registry.promote(model, "2", actor="loop", reason="beat champion by 0.05") == "1"
    assert await registry.aliases(model) == {CHAMPION: "2"}  # the challenger alias went with the promotion
    assert await registry.rollback(model, actor="ops", reason="bad on live traffic") == "1"
    assert await registry.alias(model, CHAMPION) == "1"
    trail = [(e.action, e.alias, e.previous_version, e.version, e.reason) for e in await registry.history(model)]
    assert trail[-4:] == [
        ("alias_set", CHALLENGER, None, "2", "shadow"),
        ("promoted", CHAMPION, "1", "2", "beat champion by 0.05"),
        ("alias_removed", CHALLENGER, None, "2", "promoted"),
        ("rolled_back", CHAMPION, "2", "1", "bad on live traffic"),
    ]
    assert trail[0][0] == "registered" and all(e.actor for e in await registry.history(model))


async def test_what_cannot_be_done_is_refused_with_the_reason(registry, model):
    with pytest.raises(RegistryError, match="no previous champion"):
        await registry.rollback(model, actor="ops", reason="nothing yet")
    await registry.register(new(model), actor="t", reason="r")
    with pytest.raises(RegistryError, match="no version 9"):
        await registry.promote(model, "9", actor="ops", reason="typo")
    await registry.reject(model, "1", actor="gate", reason="PR-AUC 0.80 < champion 0.85 + 0.01", details={"m": 1})
    assert (await registry.get(model, "1")).status == REJECTED
    with pytest.raises(RegistryError, match="rejected"):
        await registry.promote(model, "1", actor="ops", reason="try anyway")
    assert (await registry.history(model, "1"))[-1].details == {"m": 1}


async def test_the_checked_in_artifact_registers_with_its_training_facts(registry, tmp_path):
    copy = tmp_path / "1"
    shutil.copytree(CHECKED_IN, copy, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model_name"] = name = f"fraud_{uuid.uuid4().hex[:8]}"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    entry = await registry.register(describe(copy), actor="t", reason="checked in")
    assert entry.version == "1" and entry.checksum == checksum(copy) and entry.train_rows == 240_000
    assert entry.metrics["pr_auc"] == pytest.approx(0.8807, abs=1e-4) and entry.reference["feature_names"]
    assert entry.train_from is not None and entry.train_until > entry.train_from
    (copy / "weights.npz").write_bytes(b"changed")
    assert checksum(copy) != entry.checksum  # other bytes, another checksum
    assert entry.model_name == name


def test_the_cli_registers_promotes_lists_and_rolls_back(postgres, tmp_path):
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    for version in ("1", "2"):
        folder = tmp_path / version
        shutil.copytree(CHECKED_IN, folder, ignore=shutil.ignore_patterns("__pycache__"))
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps(manifest | {"model_name": model, "version": int(version)}))
    env = {"PATH": str(BIN), "KESTREL_REGISTRY_POSTGRES_DSN": postgres.dsn}

    def cli(*args: str) -> str:
        done = subprocess.run([BIN / "kestrel-models", *args], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "registered" in cli("register", str(tmp_path / "1"), "--champion", "--actor", "ci", "--reason", "seed")
    cli("register", str(tmp_path / "2"), "--parent", "1", "--actor", "ci")
    assert "champion 1 -> 2" in cli("promote", model, "2", "--reason", "better", "--actor", "ci")
    listing = cli("list", model).splitlines()
    assert listing[0].split()[:4] == ["version", "status", "aliases", "pr_auc"]
    assert listing[2].split()[:3] == ["2", "registered", "champion"]
    assert "rolled back to 1" in cli("rollback", model, "--reason", "oops", "--actor", "ci")
    assert "promoted champion: 1 -> 2  by ci: better" in cli("history", model)
    assert cli("lineage", model, "2").splitlines() == ["2  registered  from 1", "1  registered  from -"]
    bad = subprocess.run(
        [BIN / "kestrel-models", "promote", model, "7"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 1 and bad.stderr.strip() == f"kestrel-models: model {model!r} has no version 7"


def test_the_cli_says_in_one_line_that_postgres_is_unreachable():
    env = {"PATH": str(BIN), "KESTREL_REGISTRY_POSTGRES_DSN": "postgresql://kestrel@127.0.0.1:1/kestrel"}
    done = subprocess.run([BIN / "kestrel-models", "list", "x"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "PostgreSQL unreachable" in done.stderr
    assert "Traceback" not in done.stderr
