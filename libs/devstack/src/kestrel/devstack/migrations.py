"""The repository's migrations (infra/postgres/migrations) applied by the shared runner in kestrel.common."""

from __future__ import annotations

from pathlib import Path

from kestrel.common import migrations as runner
from kestrel.common.migrations import Migration, MigrationError, discover
from kestrel.devstack.paths import migrations_dir

__all__ = ["Migration", "MigrationError", "apply", "discover"]


async def apply(dsn: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations of `directory` (default: the repository's); returns the names applied now."""
    return await runner.apply(dsn, directory or migrations_dir())
