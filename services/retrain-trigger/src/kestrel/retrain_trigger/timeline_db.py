"""What the loop page needs, read from PostgreSQL: labelled predictions, drift reports and the audit trail."""

from __future__ import annotations

import json
from typing import Any

from kestrel.common.errors import UnavailableError
from kestrel.retrain_trigger.timeline import Bucket, Step, buckets, drift_share, steps

_PREDICTIONS = """
SELECT (extract(epoch FROM p.event_time) * 1000)::bigint, p.model_version, p.source, p.score, l.label
FROM predictions AS p LEFT JOIN LATERAL (
    SELECT label FROM labels WHERE labels.event_id = p.event_id ORDER BY label_time DESC LIMIT 1
) AS l ON true
WHERE p.model_name = $1 AND p.event_time >= to_timestamp($2 / 1000.0)
"""
_REPORTS = """
SELECT (extract(epoch FROM window_start) * 1000)::bigint, (extract(epoch FROM window_end) * 1000)::bigint,
       model_version, drifted, payload->'metrics'
FROM drift_reports WHERE model_name = $1 AND subject = 'predictions' AND window_start >= to_timestamp($2 / 1000.0)
"""
_AUDIT = """
SELECT (extract(epoch FROM at) * 1000)::bigint, version, action, alias, reason
FROM model_audit WHERE model_name = $1 AND at >= to_timestamp($2 / 1000.0) ORDER BY id
"""


async def read(dsn: str, model: str, since_ms: int, bucket_ms: int) -> tuple[list[Bucket], list[Step]]:
    import asyncpg  # loads only when the command runs

    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise UnavailableError(f"postgresql not reachable (KESTREL_RETRAIN_TRIGGER_POSTGRES_DSN): {exc}") from exc
    try:
        predictions = [tuple(r) for r in await conn.fetch(_PREDICTIONS, model, since_ms)]
        reports = [_report(r) for r in await conn.fetch(_REPORTS, model, since_ms)]
        audit = [
            dict(zip(("at_ms", "version", "action", "alias", "reason"), r, strict=True))
            for r in await conn.fetch(_AUDIT, model, since_ms)
        ]
    finally:
        await conn.close()
    return buckets(predictions, reports, bucket_ms), steps(reports, audit)


def _report(row: Any) -> dict[str, Any]:
    metrics = json.loads(row[4]) if isinstance(row[4], str) else (row[4] or [])
    return {
        "window_start_ms": row[0],
        "window_end_ms": row[1],
        "model_version": row[2],
        "drifted": row[3],
        "drift_share": drift_share(metrics),
    }
