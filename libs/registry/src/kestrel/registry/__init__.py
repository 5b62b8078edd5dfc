"""Model registry in PostgreSQL: versions with lineage, MLflow-style aliases, an audit trail (docs/registry.md)."""

from kestrel.registry.models import (
    CHALLENGER,
    CHAMPION,
    REGISTERED,
    REJECTED,
    AuditEntry,
    ModelVersion,
    NewVersion,
    RegistryError,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "REGISTERED",
    "REJECTED",
    "AuditEntry",
    "ModelVersion",
    "NewVersion",
    "RegistryError",
]
