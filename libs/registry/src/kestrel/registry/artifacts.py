"""A model artifact directory (kestrel.model's layout) as a registry entry: read from its JSON files only."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kestrel.registry.models import NewVersion, RegistryError

_HOLDOUT_METRICS = ("pr_auc", "roc_auc", "log_loss", "positive_rate")


def checksum(folder: Path) -> str:
    """sha256 over the artifact's files in name order (names and bytes): the same bytes, the same checksum."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def describe(folder: Path, *, uri: str | None = None, parent_version: str | None = None) -> NewVersion:
    """The registry entry of an artifact saved by kestrel.model (manifest.json, metrics.json, reference.json)."""
    manifest = _read(folder / "manifest.json")
    metrics = _read(folder / "metrics.json").get("holdout", {})
    reference = _read(folder / "reference.json") if (folder / "reference.json").exists() else None
    training = manifest.get("training", {})
    return NewVersion(
        model_name=manifest["model_name"],
        version=str(manifest["version"]),
        artifact_uri=uri or folder.resolve().as_uri(),
        checksum=checksum(folder),
        feature_set_version=manifest["feature_set_version"],
        metrics={k: float(metrics[k]) for k in _HOLDOUT_METRICS if k in metrics},
        train_from=_time(training.get("first_event_ms")),
        train_until=_time(training.get("last_event_ms")),
        train_rows=training.get("train_rows"),
        holdout_rows=training.get("holdout_rows"),
        reference=reference,
        parent_version=parent_version,
        description=f"{manifest.get('kind', 'model')} created {manifest.get('created_at', '?')}",
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path}: not a readable model artifact file ({exc})") from exc


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None
