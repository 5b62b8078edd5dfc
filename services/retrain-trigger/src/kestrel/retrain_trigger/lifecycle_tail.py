"""What the lifecycle topic already holds for a model: read before a step's records are published."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kestrel.common.errors import SerializationError
from kestrel.common.stateful.changelog import partition_count

TAIL = 500
"""Records read back per partition: a run writes about ten, so the steps of the run in flight are among them."""


class LifecycleTail:
    """(stage, reason) of the model's records among the last TAIL of each partition. Every reason starts with
    the run id, so a step of this run that is already there matches exactly."""

    def __init__(
        self, client_config: dict[str, Any], topic: str, deserialize: Callable[[bytes], Mapping[str, Any]]
    ) -> None:
        self._config, self._topic, self._deserialize = client_config, topic, deserialize

    async def __call__(self, model: str) -> set[tuple[str, str]]:
        admin = AIOKafkaAdminClient(**self._config)
        await admin.start()
        try:
            count = await partition_count(admin, self._topic)
        finally:
            await admin.close()
        if not count:
            return set()
        parts = [TopicPartition(self._topic, p) for p in range(count)]
        reader = AIOKafkaConsumer(enable_auto_commit=False, **self._config)
        await reader.start()
        try:
            reader.assign(parts)
            starts, ends = await reader.beginning_offsets(parts), await reader.end_offsets(parts)
            for tp in parts:
                reader.seek(tp, max(starts[tp], ends[tp] - TAIL))
            seen: set[tuple[str, str]] = set()
            while [tp for tp in parts if await reader.position(tp) < ends[tp]]:
                for records in (await reader.getmany(timeout_ms=500)).values():
                    for record in records:
                        try:
                            value = self._deserialize(record.value)
                        except SerializationError:  # garbage on the topic is not a step of ours: read past it
                            continue
                        if value.get("model_name") == model:
                            seen.add((str(value.get("stage")), str(value.get("reason"))))
            return seen
        finally:
            await reader.stop()
