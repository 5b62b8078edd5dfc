"""The PostgreSQL side: batches through COPY into staging tables and one idempotent INSERT each, and the daily
partitions kept ahead and expired."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from kestrel.common.errors import UnavailableError
from kestrel.prediction_logger.rows import TABLES, Rows, partition_name, partition_plan

log = structlog.get_logger()

_DOWN = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # includes the connection closed under a query
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
"""Errors that mean PostgreSQL is unreachable or restarting, not that the batch is wrong."""


async def _create_staging(conn: asyncpg.Connection) -> None:
    """Per connection, emptied at each commit: COPY has no conflict handling, so rows land here first."""
    for table in TABLES:
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS staging_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )


class PostgresStore:
    """Writes one batch per transaction; the consumer commits its offsets only after `write` returns."""

    def __init__(self, dsn: str, timeout_s: float) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=2,
            init=_create_staging,
            timeout=self._timeout_s,
            command_timeout=self._timeout_s,
        )

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def write(self, rows: Rows) -> dict[str, int]:
        """Rows inserted by table (fewer than given when some were already stored). UnavailableError while
        PostgreSQL is down: nothing of the batch was committed, so retrying it is safe."""
        assert self._pool is not None, "started"
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return {table: await _insert(conn, table, getattr(rows, table)) for table in TABLES}
        except _DOWN as exc:
            raise UnavailableError(f"postgres: {type(exc).__name__}: {exc}") from exc

    async def maintain_partitions(self, today: date, ahead: int, retention_days: int) -> None:
        assert self._pool is not None, "started"
        async with self._pool.acquire() as conn:
            for table in TABLES:
                existing = await conn.fetch(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = $1::regclass",
                    table,
                )
                plan = partition_plan(table, today, ahead, retention_days, [r["relname"] for r in existing])
                for day in plan.create:
                    await _create_partition(conn, table, day)
                for name in plan.drop:
                    await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                    log.info("partition_dropped", partition=name)


async def _insert(conn: asyncpg.Connection, table: str, rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    columns = TABLES[table]
    await conn.copy_records_to_table(f"staging_{table}", records=rows, columns=columns)
    names = ", ".join(columns)
    status = await conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM staging_{table} ON CONFLICT DO NOTHING"
    )
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"


async def _create_partition(conn: asyncpg.Connection, table: str, day: date) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    name = partition_name(table, day)
    try:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF {table} '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
        )
    except asyncpg.CheckViolationError:
        # rows of that day already sit in the default partition (a day created late): they stay there
        log.warning("partition_not_created", partition=name, reason="default partition holds rows of that day")
        return
    log.info("partition_created", partition=name)


class PartitionKeeper:
    """Creates the coming days' partitions and drops expired ones at start and then every `interval_s`."""

    def __init__(self, store: PostgresStore, ahead: int, retention_days: int, interval_s: float) -> None:
        self._store = store
        self._ahead = ahead
        self._retention_days = retention_days
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.run_once()
        self._task = asyncio.create_task(self._loop(), name="partition-keeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> None:
        try:
            await self._store.maintain_partitions(datetime.now(UTC).date(), self._ahead, self._retention_days)
        except (*_DOWN, asyncpg.PostgresError) as exc:
            # the default partition takes the rows meanwhile; the next round tries again
            log.warning("partition_maintenance_failed", error=f"{type(exc).__name__}: {exc}")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.run_once()
