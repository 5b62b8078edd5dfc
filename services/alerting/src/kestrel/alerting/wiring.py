"""The alerting service's wiring: the producer (alerts, dead letters), the faust app that does the work, and the
silences API."""

from __future__ import annotations

from typing import Any

from kestrel.alerting.app import make_app
from kestrel.alerting.broker_probe import PlatformProbe
from kestrel.alerting.channels import declare
from kestrel.alerting.config import Config, load_config
from kestrel.alerting.pipeline import Pipeline
from kestrel.alerting.receivers import delivery_for
from kestrel.alerting.settings import AlertingSettings
from kestrel.alerting.silence_codec import register_silence_codec
from kestrel.alerting.silence_store import TopicSilenceStore
from kestrel.alerting.silences import SILENCES_TOPIC
from kestrel.alerting.silences_api import SilencesApi
from kestrel.common.kafka.deadletter import Rejection
from kestrel.common.runtime import faust_app
from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.consumer import dead_letter_publisher, producer


def components(rt: Runtime[AlertingSettings]) -> list[Any]:
    s = rt.settings
    assert rt.topics is not None
    config = load_config(s.rules_file)  # a bad file fails start-up in one line naming the rule and field
    out = producer(rt, rt.topics.bind(s.alerts_topic))
    worker = FaustWorker(rt, config, out)
    rt.ready_when(worker.ready)
    api = SilencesApi(TopicSilenceStore(s, rt.topics), s.api_port)
    return [out, rt.watch(worker, "alerting-faust"), api]


class FaustWorker(faust_app.FaustWorker):
    """The alerting app: drift reports and platform signals in, notifications out (pipeline.py)."""

    def __init__(self, rt: Runtime[AlertingSettings], config: Config, out: Any) -> None:
        super().__init__(lambda: make_app(rt.settings))
        self.rt, self.config, self.out = rt, config, out
        self.platform = PlatformProbe(rt.settings)
        self.delivery: Any = None

    async def declare(self, app: Any) -> None:
        assert self.rt.topics is not None
        s = self.rt.settings
        drift = self.rt.topics.bind(s.drift_reports_topic)
        serde = self.rt.topics.serde(drift)
        await serde.aprepare()
        dead = dead_letter_publisher(self.rt, self.out)

        async def reject(message: Any, reason: str) -> None:
            await dead.publish([Rejection(message, reason)])

        silences = self.rt.topics.bind(SILENCES_TOPIC)
        await self.rt.topics.serde(silences).aprepare()
        channels = declare(app, s, drift.name, silences.name, register_silence_codec(self.rt.topics))
        self.delivery = delivery_for(self.config, s, self.out, topics=self.rt.topics)
        pipeline = Pipeline(app, channels, self.config, s, self.delivery, serde.deserialize, reject, self.platform)
        pipeline.register()
        self.pipeline = pipeline

    async def close(self) -> None:
        if self.delivery is not None:
            await self.delivery.close()
        await self.platform.close()
