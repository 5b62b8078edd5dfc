"""How far the prediction logger has stored the predictions topic: its consumer group's committed offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

log = structlog.get_logger()


def behind(committed: Mapping[int, int], wanted: Mapping[int, int]) -> dict[int, int]:
    """Partition -> records the logger still has to commit before it is at or past `wanted` there."""
    return {p: o - committed.get(p, 0) for p, o in wanted.items() if committed.get(p, 0) < o}


class LoggerProgress:
    """Waits until the logger's group has committed at least the given offsets: the rows are then in PostgreSQL
    (the logger commits only after its transaction)."""

    def __init__(self, config: dict[str, Any], group_id: str, topic: str, poll_s: float = 0.5) -> None:
        self._admin = AIOKafkaAdminClient(**config)
        self._group, self._topic, self._poll_s = group_id, topic, poll_s

    async def start(self) -> None:
        await self._admin.start()

    async def stop(self) -> None:
        await self._admin.close()

    async def committed(self, partitions: list[int]) -> dict[int, int]:
        tps = [TopicPartition(self._topic, p) for p in partitions]
        offsets = await self._admin.list_consumer_group_offsets(self._group, partitions=tps)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}

    async def wait(self, wanted: Mapping[int, int], timeout_s: float) -> bool:
        """True once caught up; False when `timeout_s` passed first (the caller goes ahead with what is stored)."""
        deadline = time.monotonic() + timeout_s
        missing = dict(wanted)
        while True:
            try:
                missing = behind(await self.committed(sorted(wanted)), wanted)
            except KafkaError as exc:
                log.warning("logger_offsets_unavailable", error=f"{type(exc).__name__}: {exc}")
            if not missing:
                return True
            if time.monotonic() >= deadline:
                log.warning("logger_behind", group=self._group, records_behind=sum(missing.values()))
                return False
            await asyncio.sleep(self._poll_s)
