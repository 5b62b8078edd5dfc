"""Putting a challenger into Triton: publish its artifact as a version of the model, and make Triton serve an
exact set of versions (explicit model control). A failed load leaves the versions being served as they were."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol
from uuid import uuid4

from kestrel.common.errors import KestrelError
from kestrel.model import artifact as artifacts
from kestrel.model.errors import ModelError
from kestrel.model.repository import CONFIG, publish_to_repository

_POLICY = re.compile(r"^version_policy:.*$", re.MULTILINE)


class RolloutError(ModelError):
    """Triton refused the versions asked for; what it served before is still served."""


def publish(artifact_dir: Path, repository: Path) -> Path:
    """The artifact as `<repository>/<model>/<version>/` (with the Python backend's model.py); Triton serves it
    once a load names its version (`serve`)."""
    return publish_to_repository(artifacts.load(artifact_dir), repository)


def pin(model_dir: Path, versions: tuple[int, ...]) -> str:
    """Rewrite only config.pbtxt's version_policy to serve exactly `versions` (other settings an operator tuned
    stay); returns the text it replaced, for `unpin`."""
    path = model_dir / CONFIG
    before = path.read_text()
    policy = f"version_policy: {{ specific: {{ versions: [ {', '.join(map(str, sorted(versions)))} ] }} }}"
    after, found = _POLICY.subn(policy, before)
    _write(path, after if found else before.rstrip("\n") + "\n" + policy + "\n")
    return before


def unpin(model_dir: Path, before: str) -> None:
    _write(model_dir / CONFIG, before)


class ModelControl(Protocol):
    """Triton's repository API in explicit model control mode (kestrel.devstack.triton.TritonModelControl fits):
    `load_model` raises a KestrelError with Triton's reason when the load fails."""

    async def load_model(self, name: str) -> None: ...


async def serve(triton: ModelControl, repository: Path, model_name: str, versions: tuple[int, ...]) -> None:
    """Make Triton serve exactly these versions of the model. On failure the config goes back to what it was,
    Triton keeps serving what it served, and RolloutError says why."""
    model_dir = repository / model_name
    before = pin(model_dir, versions)
    try:
        await triton.load_model(model_name)
    except (KestrelError, OSError) as exc:
        unpin(model_dir, before)
        raise RolloutError(f"Triton refused versions {list(versions)} of {model_name}: {exc}") from exc


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid4().hex[:8]}")
    tmp.write_text(text)
    tmp.replace(path)
