"""`kestrel-retrain-job`: one retraining run, outside any consumer loop (a subprocess here, a Job on Kubernetes).

Reads the training set from the prediction log (point in time), trains a challenger with the model library,
scores challenger and champion on the same time-ordered holdout, applies the gate, saves the challenger's
artifact and registers it (rejected, with the reasons, when the gate says no). Prints one JSON line: the
outcome the retrain-trigger turns into lifecycle records. Exit 0 for a decision either way, 1 when it could
not decide (too little data, no database), with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KestrelSettings, env_epilog, load_settings


class RetrainSettings(KestrelSettings):
    """Environment KESTREL_RETRAIN_<NAME>, with the shared KESTREL_<NAME> as a fallback."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_RETRAIN_")

    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """The prediction log and the model registry (may hold a password: never logged)."""
    artifacts_dir: Path = Path("var/models")
    """Where challenger artifacts are saved (<dir>/<model>/<version>/), before any rollout."""
    feature_set: str = "card"
    """The feature set the model reads (infra/features/<name>.yaml)."""
    threshold: float = Field(0.5, ge=0, le=1)
    """Decision threshold the gate's precision and recall are measured at (inference's THRESHOLD)."""
    margin: float = Field(0.005, ge=0)
    """The challenger's holdout PR-AUC must beat the champion's by at least this."""
    min_rows: int = Field(1000, ge=10)
    """Fewer labelled predictions in the window: no run (one line, exit 1)."""
    min_positives: int = Field(20, ge=2)
    """Fewer frauds among them: no run either."""
    model_kind: str = "mlp"
    """kestrel.model's learner: mlp, logreg, or auto (the better holdout PR-AUC)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kestrel-retrain-job",
        description="Retrain a model from the prediction log, gate it against the champion, register it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(RetrainSettings),
    )
    p.add_argument("--model", required=True, help="model name (its Triton and registry name)")
    p.add_argument("--hours", type=float, default=24.0, help="train on predictions of the last HOURS (event time)")
    p.add_argument("--until", help="end of the window, ISO 8601 (default: now)")
    p.add_argument("--reason", default="by hand", help="why this run (the alert that triggered it): audited")
    p.add_argument("--actor", default="kestrel-retrain-job")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = load_settings(RetrainSettings)
    from kestrel.registry import RegistryError
    from kestrel.retrain_trigger.trainset import NotEnoughData

    try:
        outcome = asyncio.run(run(args, settings))
    except (NotEnoughData, RegistryError, ConnectionError, ValueError) as exc:
        raise SystemExit(f"kestrel-retrain-job: {exc}") from None
    print(json.dumps(outcome, sort_keys=True))


async def run(args: argparse.Namespace, settings: RetrainSettings) -> dict[str, Any]:
    import asyncpg

    from kestrel.registry.store import Registry

    dsn = settings.postgres_dsn.get_secret_value()
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise ConnectionError(f"PostgreSQL unreachable ({dsn.split('@')[-1]}): {exc}") from exc
    try:
        until = datetime.fromisoformat(args.until) if args.until else datetime.now(UTC)
        window = (until - timedelta(hours=args.hours), until)
        return await retrain(conn, Registry(conn), settings, args.model, window, args.actor, args.reason)
    finally:
        await conn.close()


async def retrain(
    conn: Any,
    registry: Any,
    settings: RetrainSettings,
    model_name: str,
    window: tuple[datetime, datetime],
    actor: str,
    reason: str,
) -> dict[str, Any]:
    """One run; returns the outcome (see the module docstring)."""
    import numpy as np

    from kestrel.featureset import load_feature_set
    from kestrel.model import artifact as artifacts
    from kestrel.model.dataset import time_split
    from kestrel.model.train import TrainConfig, train
    from kestrel.registry import CHAMPION
    from kestrel.registry.artifacts import describe
    from kestrel.retrain_trigger.gate import GatePolicy, decide
    from kestrel.retrain_trigger.trainset import load_training_set

    feature_set = load_feature_set(settings.feature_set)
    data = await load_training_set(
        conn,
        feature_set,
        model_name,
        *window,
        datetime.now(UTC),
        min_rows=settings.min_rows,
        min_positives=settings.min_positives,
    )
    champion_version = await registry.alias(model_name, CHAMPION)
    champion = None
    if champion_version is not None:
        entry = await registry.get(model_name, champion_version)
        champion = artifacts.load(_path(entry.artifact_uri))
    # refit=False: the shipped network never saw the holdout both models are judged on.
    result = train(data, TrainConfig(kind=settings.model_kind, threshold=settings.threshold, refit=False))
    holdout = time_split(data, TrainConfig.holdout)[1]
    decision = decide(
        holdout.y,
        result.network.predict(holdout.X),
        champion.predict(holdout.X) if champion is not None else None,
        settings.threshold,
        GatePolicy(margin=settings.margin),
    )
    existing = [int(v.version) for v in await registry.versions(model_name) if v.version.isdigit()]
    version = max([artifacts.next_version(settings.artifacts_dir, model_name), *[v + 1 for v in existing]])
    folder = artifacts.save(artifacts.build(result, data, model_name, version), settings.artifacts_dir)
    registered = await registry.register(describe(folder, parent_version=champion_version), actor=actor, reason=reason)
    await registry.record(
        model_name,
        registered.version,
        "evaluated",
        actor=actor,
        reason="; ".join(decision.reasons),
        challenger=decision.challenger,
        champion=decision.champion,
        champion_version=champion_version,
    )
    if not decision.passed:
        failed = "; ".join(r for r in decision.reasons if "fails" in r)
        await registry.reject(model_name, registered.version, actor=actor, reason=f"gate: {failed}")
    return {
        "model_name": model_name,
        "version": registered.version,
        "champion_version": champion_version,
        "passed": decision.passed,
        "reasons": list(decision.reasons),
        "challenger": decision.challenger,
        "champion": decision.champion,
        "artifact": str(folder),
        "rows": len(data),
        "positives": data.positives,
        "holdout_rows": int(np.asarray(holdout.y).size),
        "window": [window[0].isoformat(), window[1].isoformat()],
    }


def _path(uri: str | None) -> Path:
    if not uri or not uri.startswith("file://"):
        raise ValueError(f"the champion's artifact is at {uri!r}; this job reads file:// artifacts")
    return Path(unquote(urlparse(uri).path))


if __name__ == "__main__":
    main()
