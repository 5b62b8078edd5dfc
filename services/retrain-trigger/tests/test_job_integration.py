"""One retraining run on a real PostgreSQL: the prediction log of a drifted week in, a gated challenger out."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from kestrel.registry import CHAMPION, REJECTED
from kestrel.registry.artifacts import describe
from kestrel.registry.store import Registry
from kestrel.retrain_trigger.job import RetrainSettings, retrain
from kestrel.retrain_trigger.trainset import NotEnoughData

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


async def test_a_drifted_week_trains_a_challenger_that_beats_the_champion(
    postgres, tmp_path, wave, prediction_log, champion
):
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    logged = await prediction_log(postgres.dsn, model, *wave)
    conn = await asyncpg.connect(postgres.dsn)
    try:
        registry = Registry(conn)
        await registry.register(describe(champion(tmp_path, model)), actor="ci", reason="seed")
        await registry.promote(model, "1", actor="ci", reason="seed")
        settings = RetrainSettings(postgres_dsn=postgres.dsn, artifacts_dir=tmp_path / "models")
        window = (datetime.now(UTC) - timedelta(days=30), datetime.now(UTC))
        outcome = await retrain(conn, registry, settings, model, window, "ci", "FeatureDrift")
        assert outcome["passed"], outcome["reasons"]
        assert outcome["version"] == "2" and outcome["champion_version"] == "1"
        assert outcome["challenger"]["pr_auc"] >= outcome["champion"]["pr_auc"] + 0.005
        assert outcome["rows"] <= logged and outcome["positives"] >= 20
        challenger = await registry.get(model, "2")
        assert challenger.parent_version == "1" and challenger.status == "registered"
        assert Path(outcome["artifact"], "weights.npz").exists()
        assert await registry.alias(model, CHAMPION) == "1"  # the job gates; rollout is the trigger's
        evaluated = [e for e in await registry.history(model, "2") if e.action == "evaluated"]
        assert evaluated and evaluated[0].details["champion_version"] == "1"
        strict = RetrainSettings(postgres_dsn=postgres.dsn, artifacts_dir=tmp_path / "models", margin=0.5)
        refused = await retrain(conn, registry, strict, model, window, "ci", "again")
        assert not refused["passed"] and refused["version"] == "3"
        assert (await registry.get(model, "3")).status == REJECTED
        rejected = (await registry.history(model, "3"))[-1]
        assert rejected.action == "rejected" and "pr_auc" in rejected.reason and "fails" in rejected.reason
    finally:
        await conn.close()


async def test_too_little_data_is_said_plainly(postgres, tmp_path):
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres.dsn)
    try:
        settings = RetrainSettings(postgres_dsn=postgres.dsn, artifacts_dir=tmp_path)
        window = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC))
        with pytest.raises(NotEnoughData, match="no labelled stream predictions"):
            await retrain(conn, Registry(conn), settings, model, window, "ci", "test")
    finally:
        await conn.close()
    env = {
        "PATH": str(BIN),
        "KESTREL_RETRAIN_POSTGRES_DSN": postgres.dsn,
        "KESTREL_RETRAIN_ARTIFACTS_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [BIN / "kestrel-retrain-job", "--model", model], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1 and done.stderr.strip().startswith("kestrel-retrain-job: no labelled")
