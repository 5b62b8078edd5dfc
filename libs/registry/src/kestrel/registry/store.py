"""The registry in PostgreSQL (migration 0005): register versions, move aliases, roll back; every change audited
in the same transaction as the change itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from kestrel.registry.models import (
    CHALLENGER,
    CHAMPION,
    REGISTERED,
    REJECTED,
    AuditEntry,
    ModelVersion,
    NewVersion,
    RegistryError,
    next_version,
)

_VERSION_COLUMNS = """model_name, version, stage, artifact_uri, checksum, feature_set_version, metrics, train_from,
    train_until, train_rows, holdout_rows, reference, parent_version, created_at, created_by, description"""


class Registry:
    """Model versions, aliases and their audit trail on one asyncpg connection (the caller owns it)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def register(self, new: NewVersion, *, actor: str, reason: str) -> ModelVersion:
        """Store a version (the next number when none is given). Registering the same version with the same
        checksum again returns it unchanged (a retried job); with other bytes it is refused."""
        async with self._conn.transaction():
            await self._lock(new.model_name)
            version = new.version or next_version(await self._version_names(new.model_name))
            existing = await self.get(new.model_name, version, missing_ok=True)
            if existing is not None:
                if existing.checksum != new.checksum:
                    raise RegistryError(
                        f"model {new.model_name!r} version {version} is registered with checksum "
                        f"{existing.checksum}, not {new.checksum}"
                    )
                return existing
            await self._conn.execute(
                """INSERT INTO model_registry (model_name, version, stage, metrics, artifact_uri, checksum,
                       feature_set_version, train_from, train_until, train_rows, holdout_rows, reference,
                       parent_version, created_by, description)
                   VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15)""",
                new.model_name,
                version,
                REGISTERED,
                json.dumps(dict(new.metrics)),
                new.artifact_uri,
                new.checksum,
                new.feature_set_version,
                new.train_from,
                new.train_until,
                new.train_rows,
                new.holdout_rows,
                json.dumps(new.reference) if new.reference is not None else None,
                new.parent_version,
                actor,
                new.description,
            )
            await self._audit(new.model_name, version, "registered", actor, reason, details=dict(new.metrics))
            return await self.get(new.model_name, version)  # type: ignore[return-value]

    async def get(self, model_name: str, version: str, *, missing_ok: bool = False) -> ModelVersion | None:
        row = await self._conn.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM model_registry WHERE model_name = $1 AND version = $2",
            model_name,
            version,
        )
        if row is None and not missing_ok:
            raise RegistryError(f"model {model_name!r} has no version {version}")
        return ModelVersion.from_row(row) if row is not None else None

    async def versions(self, model_name: str) -> list[ModelVersion]:
        """Every version of the model, oldest first (numeric versions in number order)."""
        rows = await self._conn.fetch(
            f"""SELECT {_VERSION_COLUMNS} FROM model_registry WHERE model_name = $1
                ORDER BY length(version), version""",
            model_name,
        )
        return [ModelVersion.from_row(r) for r in rows]

    async def aliases(self, model_name: str) -> dict[str, str]:
        rows = await self._conn.fetch("SELECT alias, version FROM model_aliases WHERE model_name = $1", model_name)
        return {r["alias"]: r["version"] for r in rows}

    async def alias(self, model_name: str, alias: str) -> str | None:
        return await self._conn.fetchval(
            "SELECT version FROM model_aliases WHERE model_name = $1 AND alias = $2", model_name, alias
        )

    async def set_alias(self, model_name: str, alias: str, version: str, *, actor: str, reason: str) -> str | None:
        """Point the alias at a registered version; returns the version it pointed at before (None: new)."""
        async with self._conn.transaction():
            await self._lock(model_name)
            return await self._move(model_name, alias, version, "alias_set", actor, reason)

    async def remove_alias(self, model_name: str, alias: str, *, actor: str, reason: str) -> str | None:
        async with self._conn.transaction():
            await self._lock(model_name)
            previous = await self.alias(model_name, alias)
            if previous is not None:
                await self._conn.execute(
                    "DELETE FROM model_aliases WHERE model_name = $1 AND alias = $2", model_name, alias
                )
                await self._audit(model_name, previous, "alias_removed", actor, reason, alias=alias)
            return previous

    async def promote(self, model_name: str, version: str, *, actor: str, reason: str) -> str | None:
        """Make the version the champion (and drop the challenger alias if it named it); returns the
        previous champion, which `rollback` restores."""
        async with self._conn.transaction():
            await self._lock(model_name)
            previous = await self._move(model_name, CHAMPION, version, "promoted", actor, reason)
            if await self.alias(model_name, CHALLENGER) == version:
                await self._conn.execute(
                    "DELETE FROM model_aliases WHERE model_name = $1 AND alias = $2", model_name, CHALLENGER
                )
                await self._audit(model_name, version, "alias_removed", actor, "promoted", alias=CHALLENGER)
            return previous

    async def rollback(self, model_name: str, *, actor: str, reason: str) -> str:
        """Restore the champion before the current one (as the audit trail recorded it); returns it."""
        async with self._conn.transaction():
            await self._lock(model_name)
            current = await self.alias(model_name, CHAMPION)
            previous = await self._conn.fetchval(
                """SELECT previous_version FROM model_audit
                   WHERE model_name = $1 AND alias = $2 AND version = $3 AND previous_version IS NOT NULL
                   ORDER BY id DESC LIMIT 1""",
                model_name,
                CHAMPION,
                current,
            )
            if current is None or previous is None:
                raise RegistryError(f"model {model_name!r} has no previous champion to roll back to")
            await self._move(model_name, CHAMPION, previous, "rolled_back", actor, reason)
            return str(previous)

    async def reject(
        self, model_name: str, version: str, *, actor: str, reason: str, details: Mapping[str, Any] | None = None
    ) -> None:
        """Mark a version refused (by the gate or the shadow window); it stays, with the reason audited."""
        async with self._conn.transaction():
            await self._lock(model_name)
            await self.get(model_name, version)
            await self._conn.execute(
                "UPDATE model_registry SET stage = $3 WHERE model_name = $1 AND version = $2",
                model_name,
                version,
                REJECTED,
            )
            await self._audit(model_name, version, "rejected", actor, reason, details=dict(details or {}))

    async def record(
        self, model_name: str, version: str | None, action: str, *, actor: str, reason: str, **details: Any
    ) -> None:
        """Audit a step that changes no row (loaded into Triton, shadow started, ...)."""
        await self._audit(model_name, version, action, actor, reason, details=details)

    async def history(self, model_name: str, version: str | None = None) -> list[AuditEntry]:
        """The model's audit trail, oldest first (one version's entries when given)."""
        rows = await self._conn.fetch(
            """SELECT * FROM model_audit WHERE model_name = $1 AND ($2::text IS NULL OR version = $2
                   OR previous_version = $2) ORDER BY id""",
            model_name,
            version,
        )
        return [AuditEntry.from_row(r) for r in rows]

    async def lineage(self, model_name: str, version: str) -> list[ModelVersion]:
        """The version, the one it was trained to replace, and so on back to the first."""
        chain, seen = [], set()
        current: str | None = version
        while current is not None and current not in seen:
            seen.add(current)
            found = await self.get(model_name, current)
            assert found is not None
            chain.append(found)
            current = found.parent_version
        return chain

    async def _move(
        self, model_name: str, alias: str, version: str, action: str, actor: str, reason: str
    ) -> str | None:
        target = await self.get(model_name, version)
        assert target is not None
        if target.status == REJECTED:
            raise RegistryError(f"model {model_name!r} version {version} was rejected; it cannot be {alias}")
        previous = await self.alias(model_name, alias)
        await self._conn.execute(
            """INSERT INTO model_aliases (model_name, alias, version) VALUES ($1, $2, $3)
               ON CONFLICT (model_name, alias) DO UPDATE SET version = $3, updated_at = now()""",
            model_name,
            alias,
            version,
        )
        await self._audit(model_name, version, action, actor, reason, alias=alias, previous=previous)
        return previous

    async def _version_names(self, model_name: str) -> list[str]:
        rows = await self._conn.fetch("SELECT version FROM model_registry WHERE model_name = $1", model_name)
        return [r["version"] for r in rows]

    async def _lock(self, model_name: str) -> None:
        """Changes to one model are serialised (two trainers registering at once get distinct versions)."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('kestrel.registry:' || $1))", model_name)

    async def _audit(
        self,
        model_name: str,
        version: str | None,
        action: str,
        actor: str,
        reason: str,
        *,
        alias: str | None = None,
        previous: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        await self._conn.execute(
            """INSERT INTO model_audit (model_name, version, action, alias, previous_version, reason, actor, details)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)""",
            model_name,
            version,
            action,
            alias,
            previous,
            reason,
            actor,
            json.dumps(dict(details or {})),
        )
