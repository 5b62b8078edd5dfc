"""Receivers on the real broker: the topic receiver and the fallback write kestrel.alerts.v1 records that the
retrain trigger can read (Avro, Confluent framing, key = fingerprint), through kestrel.common's producer."""

from __future__ import annotations

import pytest

from kestrel.alerting.config import Config, Receiver, Route, RouteOpts
from kestrel.alerting.payload import alert_record, fingerprint
from kestrel.alerting.receivers import BUILTIN_FALLBACK, SOURCE, delivery_for
from kestrel.alerting.routing import Notification
from kestrel.alerting.rules import AlertState
from kestrel.common.kafka import Producer, librdkafka_config
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings
from kestrel.devstack.topics import PrefixedTopics

pytestmark = pytest.mark.integration
T0 = 1_796_000_000_000


def _alert(feature: str, state: str) -> AlertState:
    labels = {"alertname": "FeatureDrift", "model": "fraud", "feature": feature}
    ends = T0 + 5000 if state == "resolved" else None
    return AlertState(fingerprint(labels), "FeatureDrift", labels, {}, state, T0, T0, ends, T0)


@pytest.fixture
async def wired(kafka):
    topics = PrefixedTopics(kafka.bootstrap)
    await topics.apply("kestrel.alerts.v1")
    settings = KafkaSettings(kafka_bootstrap=kafka.bootstrap, topic_prefix=topics.prefix)
    producer = Producer(librdkafka_config(settings))
    await producer.start()
    receivers = {
        "retrain": Receiver("retrain", "topic"),
        "team": Receiver("team", "webhook", "http://127.0.0.1:1/down", max_attempts=2, backoff_s=0.1, timeout_s=1),
    }
    config = Config((), Route(RouteOpts("retrain")), (), receivers, external_url="http://kestrel.test")
    bound = Topics(settings, registry=FileSchemaRegistry())
    delivery = delivery_for(config, settings, producer, topics=bound)
    yield delivery, topics, bound
    await delivery.close()
    await producer.stop()


async def test_topic_receiver_and_fallback_write_readable_alert_records(wired):
    delivery, topics, bound = wired
    firing, resolved = _alert("amount", "firing"), _alert("mcc", "resolved")
    notification = Notification("n-1", "{}:{}", "retrain", "firing", (firing, resolved), {}, T0)
    assert (await delivery.deliver(notification)).delivered
    failing = Notification("n-2", "{}:{}", "team", "firing", (firing,), {}, T0)
    result = await delivery.deliver(failing)
    assert (result.delivered, result.attempts, result.fallback) == (False, 2, BUILTIN_FALLBACK)

    name = topics.name("kestrel.alerts.v1")
    records = await topics.read(name, 3)
    serde = bound.serde(bound.bind("kestrel.alerts.v1"))
    by_key = sorted((r.key, serde.deserialize(r.value)["status"], dict(r.headers)["notification_id"]) for r in records)
    assert by_key == sorted(
        [
            (firing.fingerprint.encode(), "firing", b"n-1"),
            (resolved.fingerprint.encode(), "resolved", b"n-1"),
            (firing.fingerprint.encode(), "firing", b"n-2"),
        ]
    )
    assert serde.deserialize(records[0].value) in [alert_record(a, SOURCE) for a in (firing, resolved)]
