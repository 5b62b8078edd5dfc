"""Publish artifacts into a Triton model repository as new versions (Triton's explicit mode loads them)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from importlib import resources
from pathlib import Path
from uuid import uuid4

from kestrel.model.artifact import ModelArtifact, write_files
from kestrel.model.errors import ModelError
from kestrel.model.triton_config import TritonConfig, input_width

CONFIG = "config.pbtxt"


def model_py() -> bytes:
    """The Python-backend model every published version runs."""
    return resources.files("kestrel.model").joinpath("triton_model.py").read_bytes()


def publish_to_repository(
    artifact: ModelArtifact, repo_dir: Path, model_name: str | None = None, config: TritonConfig | None = None
) -> Path:
    """Write `<repo>/<model>/<version>/`: the whole artifact plus model.py; create config.pbtxt if missing.

    The version folder is a complete artifact (artifact.load reads it), so the drift monitor finds the
    reference statistics of exactly the version Triton serves.

    An existing config.pbtxt is kept (operators may have tuned it) but must take this artifact's
    feature count: one Triton model has one input shape, so another feature count needs another
    model name. Returns the version directory; Triton serves it after a load request.
    """
    if model_name and model_name != artifact.model_name:
        artifact = replace(artifact, model_name=model_name)
    name = artifact.model_name
    model_dir = Path(repo_dir) / name
    target = model_dir / str(artifact.version)
    if target.exists():
        raise ModelError(f"{target} exists: published versions are immutable")
    _ensure_config(model_dir, config or TritonConfig(name, len(artifact.feature_names)), len(artifact.feature_names))
    # A name that does not parse as an integer: Triton ignores the folder while it is being written.
    staging = model_dir / f".staging-{artifact.version}-{uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write_files(artifact, staging)
        (staging / "model.py").write_bytes(model_py())
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def write_config(model_dir: Path, config: TritonConfig, variant: str | None = None) -> Path:
    """config.pbtxt, or `configs/<variant>.pbtxt`, which tritonserver --model-config-name=<variant> uses instead."""
    path = Path(model_dir) / CONFIG if variant is None else Path(model_dir) / "configs" / f"{variant}.pbtxt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid4().hex[:8]}")
    tmp.write_text(config.render())
    tmp.replace(path)
    return path


def pin_versions(repo_dir: Path, config: TritonConfig, versions: tuple[int, ...]) -> None:
    """Serve exactly `versions` (e.g. roll back to the previous one); takes effect at the next load request."""
    write_config(Path(repo_dir) / config.name, replace(config, versions=tuple(versions)))


def _ensure_config(model_dir: Path, config: TritonConfig, features: int) -> None:
    if not (model_dir / CONFIG).exists():
        write_config(model_dir, config)
    for path in [model_dir / CONFIG, *sorted((model_dir / "configs").glob("*.pbtxt"))]:
        width = input_width(path.read_text())
        if width != features:
            raise ModelError(f"{path} takes {width} features, the artifact {features}: publish under a new model name")
