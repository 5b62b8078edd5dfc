"""The retrain-trigger's wiring: the producer (lifecycle records, dead letters), a PostgreSQL pool (registry,
prediction log), Triton's repository API, and the faust app that drives the runs (driver.py)."""

from __future__ import annotations

from typing import Any

from kestrel.common.kafka.config import aiokafka_config
from kestrel.common.kafka.deadletter import Rejection
from kestrel.common.runtime import faust_app
from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.consumer import dead_letter_publisher, producer
from kestrel.retrain_trigger.driver import Driver
from kestrel.retrain_trigger.effects import Effects
from kestrel.retrain_trigger.lifecycle_tail import LifecycleTail
from kestrel.retrain_trigger.settings import RetrainTriggerSettings
from kestrel.retrain_trigger.triton import TritonRepository


def components(rt: Runtime[RetrainTriggerSettings]) -> list[Any]:
    assert rt.topics is not None
    out = producer(rt, rt.topics.bind(rt.settings.lifecycle_topic))
    worker = RetrainWorker(rt, out)
    rt.ready_when(worker.ready)
    return [out, rt.watch(worker, "retrain-trigger-faust")]


class RetrainWorker(faust_app.FaustWorker):
    def __init__(self, rt: Runtime[RetrainTriggerSettings], out: Any) -> None:
        s = rt.settings
        app_id = f"{s.topic_prefix}{s.app_id}"
        super().__init__(
            lambda: faust_app.make_app(
                s, app_id, partitions=s.partitions, session_timeout_ms=s.session_timeout_ms, data_dir=s.data_dir
            )
        )
        self.rt, self.out = rt, out
        self.pool: Any = None
        self.driver: Driver | None = None

    async def declare(self, app: Any) -> None:
        import asyncpg

        assert self.rt.topics is not None
        s, topics = self.rt.settings, self.rt.topics
        alerts, lifecycle = topics.bind(s.alerts_topic), topics.bind(s.lifecycle_topic)
        alert_serde, lifecycle_serde = topics.serde(alerts), topics.serde(lifecycle)
        await alert_serde.aprepare()
        await lifecycle_serde.aprepare()
        dead = dead_letter_publisher(self.rt, self.out)

        async def reject(message: Any, reason: str) -> None:
            await dead.publish([Rejection(message, reason)])

        # min_size 0: no connection until a step needs one, so a database outage does not stop the consumer
        self.pool = await asyncpg.create_pool(s.postgres_dsn.get_secret_value(), min_size=0, max_size=4)
        tail = LifecycleTail(aiokafka_config(s), lifecycle.name, lifecycle_serde.deserialize)
        effects = Effects(self.out, lifecycle.name, lifecycle_serde.serialize, self.pool, tail)
        decode = {"alerts": alert_serde.deserialize, "lifecycle": lifecycle_serde.deserialize}
        self.driver = Driver(s, effects, TritonRepository(s.triton_http_url), self.pool, decode, reject)
        self.driver.declare(app, alerts.name, lifecycle.name)

    async def close(self) -> None:
        if self.driver is not None:
            await self.driver.cancel()
        if self.pool is not None:
            await self.pool.close()
