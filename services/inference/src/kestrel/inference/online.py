"""Online features for Predict: one Redis round trip per batch, defaults (flagged) when Redis is unavailable."""

from __future__ import annotations

import structlog

from kestrel.common.errors import UnavailableError
from kestrel.online_store import OnlineBatch, OnlineStore

log = structlog.get_logger()


class OnlineFeatures:
    def __init__(self, store: OnlineStore) -> None:
        self._store = store

    async def fetch(self, entity_ids: list[str]) -> tuple[OnlineBatch, bool]:
        """The entities' stored features and event logs (one round trip), and whether the store was down
        (defaults then: a slow or dead Redis degrades answers, it never fails them)."""
        try:
            return await self._store.get_many(entity_ids, with_log=True), False
        except UnavailableError as exc:
            log.warning("online_store_unavailable", error=str(exc), entities=len(entity_ids))
            return self._store.defaults_for(entity_ids), True
