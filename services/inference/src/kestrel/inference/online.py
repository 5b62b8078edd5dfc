"""Online features for Predict: one Redis round trip per batch, defaults (flagged) when Redis is unavailable."""

from __future__ import annotations

import structlog

from kestrel.common.errors import UnavailableError
from kestrel.online_store import OnlineBatch, OnlineStore, SetQuery

log = structlog.get_logger()


class OnlineFeatures:
    def __init__(self, store: OnlineStore) -> None:
        self._store = store

    async def fetch(self, entity_ids: list[str], queries: list[SetQuery] | None = None) -> tuple[OnlineBatch, bool]:
        """The entities' stored features (and the answers of their categorical sets to `queries`, in the same
        round trip), and whether the store was down (defaults then: a slow or dead Redis degrades answers, it
        never fails them)."""
        try:
            return await self._store.get_many(entity_ids, queries), False
        except UnavailableError as exc:
            log.warning("online_store_unavailable", error=str(exc), entities=len(entity_ids))
            return self._store.defaults_for(entity_ids), True
