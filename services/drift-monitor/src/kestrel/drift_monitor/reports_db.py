"""PostgreSQL for the drift monitor: a window's rows through the prediction log's read API, reports upserted."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from kestrel.prediction_logger.read import (
    LabelledPrediction,
    Matrix,
    labelled_predictions,
    score_window,
    window_threshold,
)

_UPSERT = """
INSERT INTO drift_reports (report_id, created_at, subject, drifted, payload, model_name, model_version,
                           window_start, window_end, status, late_predictions)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11)
ON CONFLICT (report_id) DO UPDATE SET
    created_at = EXCLUDED.created_at, drifted = EXCLUDED.drifted, payload = EXCLUDED.payload,
    status = EXCLUDED.status, late_predictions = EXCLUDED.late_predictions
"""


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def upsert_args(report: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row of one report; `payload` is the whole record, as the topic carries it."""
    return (
        report["report_id"],
        at(report["created_at"]),
        report["subject"],
        report["drifted"],
        json.dumps(report, separators=(",", ":")),
        report["model_name"],
        report["model_version"],
        at(report["window_start"]),
        at(report["window_end"]),
        report["status"],
        report["late_predictions"],
    )


class ReportsDatabase:
    """A small pool: one window is read and one report written at a time per close."""

    def __init__(self, dsn: str, timeout_s: float) -> None:
        self._dsn, self._timeout_s = dsn, timeout_s
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=1, max_size=2, timeout=self._timeout_s, command_timeout=self._timeout_s
        )

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def window(
        self, model_name: str, model_version: str, start_ms: int, end_ms: int, names: Mapping[str, Sequence[str]]
    ) -> Matrix:
        assert self._pool is not None, "started"
        return await score_window(self._pool, model_name, model_version, at(start_ms), at(end_ms), names)

    async def labelled(
        self, model_name: str, model_version: str, start_ms: int, end_ms: int
    ) -> list[LabelledPrediction]:
        """The window's predictions labelled so far, each with its newest label."""
        assert self._pool is not None, "started"
        return await labelled_predictions(self._pool, model_name, model_version, at(start_ms), at(end_ms))

    async def threshold(self, model_name: str, model_version: str, start_ms: int, end_ms: int) -> float | None:
        assert self._pool is not None, "started"
        return await window_threshold(self._pool, model_name, model_version, at(start_ms), at(end_ms))

    async def upsert(self, report: Mapping[str, Any]) -> None:
        """Idempotent: a report closed again after a crash replaces the earlier one (same report_id)."""
        assert self._pool is not None, "started"
        await self._pool.execute(_UPSERT, *upsert_args(report))
