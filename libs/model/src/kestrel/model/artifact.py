"""Versioned model artifacts on disk: manifest, weights, metrics and drift references; immutable once saved."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np

from kestrel.model.dataset import TrainingSet
from kestrel.model.errors import ModelError
from kestrel.model.events import EventReference
from kestrel.model.network import Network
from kestrel.model.reference import ReferenceStats, compute_reference
from kestrel.model.train import TrainResult

FORMAT = 1
MANIFEST, WEIGHTS, METRICS = "manifest.json", "weights.npz", "metrics.json"
REFERENCE_JSON, REFERENCE_NPZ = "reference.json", "reference.npz"
EVENTS_JSON = "events_reference.json"
"""Optional: the training events' monitored columns (kestrel.model.events); a file of its own, so adding it to a
version made before it existed leaves that version's other files as they were."""
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ModelArtifact:
    model_name: str
    version: int
    feature_set_version: str
    """e.g. `card.v1`; serving refuses vectors of another feature set version."""
    feature_names: tuple[str, ...]
    network: Network
    metrics: dict[str, Any]
    """Holdout metrics of the model and of every candidate compared (see TrainResult)."""
    training: dict[str, Any]
    reference: ReferenceStats
    created_at: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.model_name):
            raise ModelError(f"model name {self.model_name!r}: letters, digits, _ . - only (a Triton model name)")
        if self.version < 1:
            raise ModelError("model versions start at 1")
        if self.network.n_features != len(self.feature_names) or self.reference.feature_names != self.feature_names:
            raise ModelError("network, feature names and reference statistics disagree on the features")

    @property
    def kind(self) -> str:
        return self.network.kind

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.network.predict(X)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model_name": self.model_name,
            "version": self.version,
            "kind": self.kind,
            "created_at": self.created_at,
            "feature_set_version": self.feature_set_version,
            "feature_names": list(self.feature_names),
            "training": self.training,
        }


def build(result: TrainResult, data: TrainingSet, model_name: str, version: int) -> ModelArtifact:
    """The artifact of a training run, with reference statistics of the rows it was trained on."""
    reference = compute_reference(
        data.X, result.network.predict(data.X), data.feature_names, performance=result.performance, events=data.events
    )
    metrics = {"kind": result.kind, "holdout": result.holdout, "candidates": result.candidates}
    return ModelArtifact(
        model_name,
        version,
        data.feature_set_version,
        data.feature_names,
        result.network,
        metrics,
        dict(result.details),
        reference,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def save(artifact: ModelArtifact, root: Path) -> Path:
    """Write `root/<model_name>/<version>/` atomically; an existing version is never overwritten."""
    target = Path(root) / artifact.model_name / str(artifact.version)
    if target.exists():
        suggestion = next_version(root, artifact.model_name)
        raise ModelError(f"{target} exists: versions are immutable, save as version {suggestion}")
    staging = target.parent / f".staging-{artifact.version}-{uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        write_files(artifact, staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_files(artifact: ModelArtifact, directory: Path) -> None:
    (directory / MANIFEST).write_text(json.dumps(artifact.manifest(), indent=2))
    (directory / METRICS).write_text(json.dumps(artifact.metrics, indent=2))
    np.savez(directory / WEIGHTS, **artifact.network.to_arrays())  # type: ignore[arg-type]  # numpy stub: **arrays
    (directory / REFERENCE_JSON).write_text(json.dumps(artifact.reference.to_json()))
    reference = artifact.reference
    np.savez_compressed(directory / REFERENCE_NPZ, sample=reference.sample, scores=reference.sample_scores)
    if reference.events is not None:
        (directory / EVENTS_JSON).write_text(json.dumps(reference.events.to_json(), sort_keys=True))


def load(directory: Path) -> ModelArtifact:
    """Read a version directory written by save()."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            raise ModelError(f"{directory}: artifact format {manifest.get('format')}, this code reads {FORMAT}")
        with np.load(directory / WEIGHTS, allow_pickle=False) as weights:
            network = Network.from_arrays(dict(weights))
        with np.load(directory / REFERENCE_NPZ, allow_pickle=False) as ref:
            reference = ReferenceStats.from_parts(
                json.loads((directory / REFERENCE_JSON).read_text()), ref["sample"], ref["scores"]
            )
        if (directory / EVENTS_JSON).exists():
            events = EventReference.from_json(json.loads((directory / EVENTS_JSON).read_text()))
            reference = replace(reference, events=events)
        return ModelArtifact(
            manifest["model_name"],
            int(manifest["version"]),
            manifest["feature_set_version"],
            tuple(manifest["feature_names"]),
            network,
            json.loads((directory / METRICS).read_text()),
            manifest["training"],
            reference,
            manifest["created_at"],
        )
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"cannot read model artifact {directory}: {exc}") from exc


def versions(root: Path, model_name: str) -> list[int]:
    """Saved versions of a model, ascending (also works on a Triton model repository)."""
    folder = Path(root) / model_name
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else []


def next_version(root: Path, model_name: str) -> int:
    return max(versions(root, model_name), default=0) + 1
