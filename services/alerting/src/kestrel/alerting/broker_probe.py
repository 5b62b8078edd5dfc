"""Reads the broker for platform signals: committed offsets of consumer groups, end offsets of their topics and
of the dead-letter topics (`kestrel.dlq.*`). Only the leader replica runs it (see pipeline), so two replicas
never report the same signal twice."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kestrel.alerting.broker_signals import Offsets, dead_letter_signals, lag_signals
from kestrel.alerting.rules import Signal
from kestrel.alerting.settings import AlertingSettings
from kestrel.common.kafka import aiokafka_config


class PlatformProbe:
    def __init__(self, settings: AlertingSettings) -> None:
        self._config = aiokafka_config(settings)
        self._prefix = settings.topic_prefix
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._previous: tuple[float, Offsets] | None = None

    async def sample(self, at_ms: int) -> list[Signal]:
        """Lag of every group on this deployment's topics, and dead-letter rates since the previous sample
        (none on the first sample: a rate needs two)."""
        admin, consumer = await self._clients()
        committed = await self._committed(admin)
        topics = {t for offsets in committed.values() for t, _ in offsets}
        dead = {t for t in await consumer.topics() if t.startswith(f"{self._prefix}kestrel.dlq.")}
        ends = await self._ends(consumer, topics | dead)
        signals = lag_signals(committed, ends, at_ms)
        now = time.monotonic()
        dead_ends = {tp: o for tp, o in ends.items() if tp[0] in dead}
        if self._previous is not None:
            signals += dead_letter_signals(self._previous[1], dead_ends, now - self._previous[0], self._prefix, at_ms)
        self._previous = (now, dead_ends)
        return signals

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._consumer is not None:
            await self._consumer.stop()
        self._admin = self._consumer = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            self._admin = AIOKafkaAdminClient(**self._config)
            await self._admin.start()
            self._consumer = AIOKafkaConsumer(**self._config, enable_auto_commit=False)
            await self._consumer.start()
        return self._admin, self._consumer

    async def _committed(self, admin: AIOKafkaAdminClient) -> dict[str, dict[tuple[str, int], int]]:
        out: dict[str, dict[tuple[str, int], int]] = {}
        for group, *_ in await admin.list_consumer_groups():
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in offsets.items()
                if meta.offset >= 0 and tp.topic.startswith(self._prefix)
            }
            if mine:
                out[group] = mine
        return out

    async def _ends(self, consumer: AIOKafkaConsumer, topics: set[str]) -> dict[tuple[str, int], int]:
        partitions = [TopicPartition(t, p) for t in sorted(topics) for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            return {}
        return {(tp.topic, tp.partition): end for tp, end in (await consumer.end_offsets(partitions)).items()}
