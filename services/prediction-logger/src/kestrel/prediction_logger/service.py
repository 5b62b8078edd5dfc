"""The prediction-logger as the runtime runs it (light to import: `--help` loads no client)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from kestrel.common.runtime import Service
from kestrel.common.runtime.startup import Dependency
from kestrel.common.settings import setting_name
from kestrel.prediction_logger.settings import PredictionLoggerSettings


def postgres(settings: PredictionLoggerSettings) -> Dependency:
    """PostgreSQL, probed with one connection; its address is shown without the user and password."""
    dsn = settings.postgres_dsn.get_secret_value()

    async def probe() -> None:
        import asyncpg  # imported here so that `--help` never loads a database client

        conn = await asyncpg.connect(dsn, timeout=settings.postgres_timeout_s)
        await conn.close()

    parts = urlsplit(dsn)
    address = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return Dependency("postgres", address, setting_name(settings, "postgres_dsn"), probe)


def dependencies(settings: PredictionLoggerSettings) -> Sequence[Any]:
    from kestrel.common.runtime import probes

    return [probes.kafka(settings), postgres(settings)]


SERVICE = Service(
    name="prediction-logger",
    summary="Stores every prediction (kestrel.predictions.v1) and label (kestrel.labels.v1) in PostgreSQL once.",
    settings=PredictionLoggerSettings,
    components="kestrel.prediction_logger.app:components",
    dependencies=dependencies,
)
