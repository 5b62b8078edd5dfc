"""A step's side effects, each safe to repeat: its lifecycle records on kestrel.model-lifecycle.v1, and the
registry's alias moves and audit rows (skipped when the audit trail already holds the step: same action, same
reason, and every reason starts with the run id). Also the one fact the policy reads from the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from kestrel.common.kafka import OutRecord
from kestrel.prediction_logger import read
from kestrel.registry import CHALLENGER, CHAMPION, REJECTED
from kestrel.registry.store import Registry

ACTOR = "retrain-trigger"
JOB_AUDITED = frozenset({"evaluated"})
"""Stages the job already wrote to the registry (with both models' metrics)."""


class Effects:
    def __init__(
        self,
        producer: Any,
        topic: str,
        serialize: Any,
        pool: Any,
        published: Callable[[str], Awaitable[set[tuple[str, str]]]] | None = None,
    ) -> None:
        self.producer, self.topic, self.serialize, self.pool = producer, topic, serialize, pool
        self.published = published
        """(stage, reason) of a model's records already on the topic (kestrel.retrain_trigger.lifecycle_tail)."""

    async def publish(self, records: Sequence[dict[str, Any]]) -> None:
        """The registry first (the alias moved, the step audited), then the records, acknowledged by the broker:
        whoever reads a record finds the registry already saying so. Records already on the topic are not sent
        again: an owner killed after the broker took a step's records, before its outbox or its input offsets
        were stored, leaves them to be published again by the next one (every reason starts with the run id, so
        a step matches only itself). A step is rare; reading the topic's tail back costs one consumer start."""
        for record in records:
            await self.audit(record)
        if records and self.published is not None:
            there = await self.published(records[0]["model_name"])
            records = [r for r in records if (r["stage"], r["reason"]) not in there]
        out = [OutRecord(self.topic, self.serialize(r), r["model_name"].encode()) for r in records]
        await self.producer.send_many(out)

    async def audit(self, record: dict[str, Any]) -> None:
        stage, model, reason = record["stage"], record["model_name"], record["reason"]
        version = record["version"] or None
        if stage in JOB_AUDITED:
            return
        async with self.pool.acquire() as conn:
            registry = Registry(conn)
            if any(e.action == stage and e.reason == reason for e in await registry.history(model, version)):
                return
            await _apply(registry, stage, model, version, reason, record.get("metrics") or {})

    async def new_labels(self, model: str) -> int:
        """Labelled stream predictions since the champion's training window ended (all of them without one)."""
        async with self.pool.acquire() as conn:
            registry = Registry(conn)
            champion = await registry.alias(model, CHAMPION)
            entry = await registry.get(model, champion) if champion else None
            since = entry.train_until if entry is not None and entry.train_until else datetime(1970, 1, 1, tzinfo=UTC)
            return await read.labelled_count(conn, model, since)


async def _apply(registry: Registry, stage: str, model: str, version: str | None, reason: str, metrics: Any) -> None:
    if stage == "promoted" and version is not None:
        if await registry.alias(model, CHAMPION) != version:
            await registry.promote(model, version, actor=ACTOR, reason=reason)
        return
    if stage == "rejected" and version is not None:
        if await registry.alias(model, CHALLENGER) == version:
            await registry.remove_alias(model, CHALLENGER, actor=ACTOR, reason=reason)
        found = await registry.get(model, version, missing_ok=True)
        if found is not None and found.status != REJECTED:
            await registry.reject(model, version, actor=ACTOR, reason=reason, details=metrics)
            return
    if stage == "loaded" and version is not None:
        await registry.set_alias(model, CHALLENGER, version, actor=ACTOR, reason=reason)
    await registry.record(model, version, stage, actor=ACTOR, reason=reason, **metrics)
