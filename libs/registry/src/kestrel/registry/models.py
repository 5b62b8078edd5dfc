"""What the registry holds: model versions with their lineage and training facts, and audit entries; no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kestrel.common.errors import KestrelError

CHAMPION, CHALLENGER = "champion", "challenger"
"""The aliases the loop uses: the version that answers, and the one being tried beside it."""
REGISTERED, REJECTED = "registered", "rejected"
"""A version's status (the `stage` column): usable, or refused by the gate (kept, with the reason in the audit)."""


class RegistryError(KestrelError):
    """A registry request that cannot be done (unknown model or version, no previous champion, a conflict)."""


@dataclass(frozen=True)
class NewVersion:
    """A trained model to register. `version` None takes the next number for the model."""

    model_name: str
    artifact_uri: str
    checksum: str
    """sha256 of the artifact: registering the same version twice must name the same bytes."""
    feature_set_version: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Holdout metrics (pr_auc, roc_auc, precision, recall, ...)."""
    train_from: datetime | None = None
    train_until: datetime | None = None
    train_rows: int | None = None
    holdout_rows: int | None = None
    reference: Mapping[str, Any] | None = None
    """The drift monitor's reference statistics (the artifact's reference.json document)."""
    parent_version: str | None = None
    """The version this one was trained to replace (the champion at the time): lineage."""
    version: str | None = None
    description: str = ""


@dataclass(frozen=True)
class ModelVersion:
    """A registered version as the registry holds it."""

    model_name: str
    version: str
    status: str
    artifact_uri: str | None
    checksum: str | None
    feature_set_version: str | None
    metrics: dict[str, float]
    train_from: datetime | None
    train_until: datetime | None
    train_rows: int | None
    holdout_rows: int | None
    reference: dict[str, Any] | None
    parent_version: str | None
    created_at: datetime
    created_by: str
    description: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ModelVersion:
        return cls(
            row["model_name"],
            row["version"],
            row["stage"],
            row["artifact_uri"],
            row["checksum"],
            row["feature_set_version"],
            _json(row["metrics"]) or {},
            row["train_from"],
            row["train_until"],
            row["train_rows"],
            row["holdout_rows"],
            _json(row["reference"]),
            row["parent_version"],
            row["created_at"],
            row["created_by"],
            row["description"],
        )


@dataclass(frozen=True)
class AuditEntry:
    """One change: what happened to which version (and alias), who did it, and why."""

    id: int
    model_name: str
    version: str | None
    action: str
    alias: str | None
    previous_version: str | None
    reason: str
    actor: str
    at: datetime
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEntry:
        return cls(
            row["id"],
            row["model_name"],
            row["version"],
            row["action"],
            row["alias"],
            row["previous_version"],
            row["reason"],
            row["actor"],
            row["at"],
            _json(row["details"]) or {},
        )


def next_version(existing: list[str]) -> str:
    """One more than the largest numeric version (Triton's model repository numbers versions), "1" for none."""
    numbers = [int(v) for v in existing if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
