"""Which model versions inference asks Triton for, learnt from kestrel.model-lifecycle.v1: the champion answers,
a challenger in shadow is scored beside it. Every replica reads the whole topic (no consumer group): a promotion
reaches all of them without a restart, and a restarted one starts from what the topic says now."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge

from kestrel.common.avro import AvroSerde
from kestrel.common.errors import SerializationError

log = structlog.get_logger()

SERVING = Gauge("kestrel_inference_serving_version", "Model version inference asks Triton for", ["model", "role"])

CHAMPION_STAGES = frozenset({"promoted", "rolled_back"})
"""Lifecycle stages that make their version the champion."""
SHADOW_START, SHADOW_END = "shadow_started", frozenset({"shadow_ended", "rejected", "promoted", "rolled_back"})


@dataclass
class ServingState:
    """One model's champion and shadow challenger, as the lifecycle records so far say (None: not said)."""

    model_name: str
    champion: str | None = None
    challenger: str | None = None

    def apply(self, record: Mapping[str, Any]) -> bool:
        """Take one lifecycle record into account; whether the state changed. Other models' records, and
        stages that move nothing (trained, evaluated, registered, loaded, ...), change nothing."""
        if record.get("model_name") != self.model_name:
            return False
        before = (self.champion, self.challenger)
        stage, version = record.get("stage"), str(record.get("version"))
        if stage in SHADOW_END and self.challenger == version:
            self.challenger = None
        if stage in CHAMPION_STAGES:
            self.champion = version
        elif stage == SHADOW_START and version != self.champion:
            self.challenger = version
        return (self.champion, self.challenger) != before


def champion_version(state: ServingState, pinned: str, current: str, ready: list[str]) -> str:
    """The version the champion's calls ask Triton for. The lifecycle's champion first, then the pinned setting.
    With neither, not "" (Triton's latest ready version: a challenger as soon as it is loaded for its shadow,
    which would then answer): the version asked for so far, or, the first time, the highest version Triton had
    ready that is not the challenger in shadow. "" only when Triton named none (it was not up at start)."""
    if state.champion or pinned:
        return state.champion or pinned
    if current and current != state.challenger:
        return current
    numbered = [v for v in ready if v.isdigit() and v != state.challenger]
    return max(numbered, key=int, default="")


class LifecycleFollower:
    """Reads the lifecycle topic from its beginning at start (ready once it reached the end it found then),
    then follows it; `on_change(state)` runs after each change. A Loop component: watch it."""

    def __init__(
        self,
        new_consumer: Callable[[], AIOKafkaConsumer],
        topic: str,
        serde: AvroSerde,
        state: ServingState,
        on_change: Callable[[ServingState], None],
    ) -> None:
        self._new_consumer, self.topic, self._serde = new_consumer, topic, serde
        self.state, self._on_change = state, on_change
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = self._consumer = self._new_consumer()
        await consumer.start()
        # Without a subscription nothing fetches the topic's metadata: ask the cluster (aiokafka has no public call).
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(self.topic, p) for p in sorted(cluster.partitions_for_topic(self.topic) or ())]
        if not partitions:
            raise RuntimeError(f"topic {self.topic} not found: apply the topic catalogue (kestrel-stack topics apply)")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            await self._take(await consumer.getmany(timeout_ms=200))
        log.info(
            "lifecycle_caught_up",
            model=self.state.model_name,
            champion=self.state.champion,
            challenger=self.state.challenger,
        )
        self._publish()
        self._task = asyncio.create_task(self._follow())

    async def wait(self) -> None:
        """Returns when following ends: normally after stop(), raising what made it fail otherwise."""
        if self._task is not None:
            await asyncio.wait([self._task])
            if not self._task.cancelled():
                self._task.result()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            await self._take(await self._consumer.getmany(timeout_ms=1000))

    async def _take(self, batches: Mapping[Any, list[Any]]) -> None:
        changed = False
        for records in batches.values():
            for record in records:
                try:
                    value = self._serde.deserialize(record.value)
                except SerializationError as exc:  # one bad record must not stop promotions: skip it, say so
                    log.warning("lifecycle_record_unreadable", offset=record.offset, reason=exc.reason)
                    continue
                changed |= self.state.apply(value)
        if changed and self._task is not None:
            self._publish()

    def _publish(self) -> None:
        s = self.state
        log.info("serving_versions", model=s.model_name, champion=s.champion, challenger=s.challenger)
        SERVING.labels(s.model_name, "champion").set(_number(s.champion))
        SERVING.labels(s.model_name, "challenger").set(_number(s.challenger))
        self._on_change(s)


def _number(version: str | None) -> float:
    """A version as a gauge value: -1 for none (or one that is not a number)."""
    return float(version) if version is not None and version.isdigit() else -1.0
