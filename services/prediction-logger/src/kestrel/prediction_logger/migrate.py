"""`kestrel-db-migrate`: applies the pending schema migrations to the deployment's PostgreSQL, then exits."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from kestrel.common.settings import KestrelSettings, env_epilog, load_settings


class MigrateSettings(KestrelSettings):
    """The logger's own variables (KESTREL_PREDICTION_LOGGER_POSTGRES_DSN), or the shared KESTREL_POSTGRES_DSN."""

    model_config = SettingsConfigDict(env_prefix="KESTREL_PREDICTION_LOGGER_")

    postgres_dsn: SecretStr = SecretStr("postgresql://kestrel@127.0.0.1:5432/kestrel")
    """PostgreSQL URL (it may hold a password: never logged)."""
    migrations_dir: Path = Path("infra/postgres/migrations")
    """The *.sql migrations, applied in name order, each once (the image holds them at /app/infra/postgres)."""


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="kestrel-db-migrate",
        description="Apply pending PostgreSQL schema migrations (one transaction each) and exit; safe to rerun.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_epilog(MigrateSettings),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Exit status 0 when the schema is up to date, 1 when a migration failed (it was rolled back)."""
    parser().parse_args(argv)
    settings = load_settings(MigrateSettings)
    from kestrel.common import migrations
    from kestrel.common.logs import configure_logging

    configure_logging("db-migrate", settings.log_format, settings.log_level)
    try:
        applied = asyncio.run(migrations.apply(settings.postgres_dsn.get_secret_value(), settings.migrations_dir))
    except migrations.MigrationError as exc:
        raise SystemExit(f"kestrel-db-migrate: {exc}") from None
    print(f"kestrel-db-migrate: {len(applied)} applied" + (f": {', '.join(applied)}" if applied else ""))


if __name__ == "__main__":
    main()
