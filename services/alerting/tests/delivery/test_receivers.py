"""Receivers against a webhook receiver on loopback and a recording producer: payloads, bounded retries with
backoff, the deadline, the fallback; deliver() never raises for a receiver's failure."""

from __future__ import annotations

import asyncio
import time

import pytest

from kestrel.alerting import receivers
from kestrel.alerting.config import Config, Receiver, Route, RouteOpts
from kestrel.alerting.payload import alert_record, alertmanager_alerts, fingerprint, webhook_payload
from kestrel.alerting.receivers import NOTIFICATION_HEADER, delivery_for
from kestrel.alerting.routing import Notification
from kestrel.alerting.rules import AlertState
from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.errors import UnavailableError
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.bindings import Topics
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import load_catalogue

T0 = 1_796_000_000_000
EXTERNAL = "http://kestrel.example/alerts"


class RecordingProducer:
    def __init__(self, fail: bool = False) -> None:
        self.records: list = []
        self.fail = fail

    async def send_many(self, records):
        if self.fail:
            raise UnavailableError("kafka delivery failed: broker down")
        self.records.extend(records)


def _alert(feature: str, state: str = "firing") -> AlertState:
    labels = {"alertname": "FeatureDrift", "model": "fraud", "feature": feature}
    return AlertState(
        fingerprint=fingerprint(labels),
        rule="FeatureDrift",
        labels=labels,
        annotations={"summary": f"{feature} drifted"},
        state=state,
        active_since_ms=T0,
        starts_at_ms=T0,
        ends_at_ms=T0 + 1000 if state == "resolved" else None,
        last_true_ms=T0,
    )


def _notification(receiver: str, *alerts: AlertState) -> Notification:
    alerts = alerts or (_alert("amount"), _alert("mcc"))
    return Notification(
        id="n-42",
        group_key='{}:{alertname="FeatureDrift"}',
        receiver=receiver,
        status="firing",
        alerts=tuple(alerts),
        group_labels={"alertname": "FeatureDrift"},
        created_ms=T0,
    )


def _receiver(name: str, kind: str, url: str | None = None, **overrides) -> Receiver:
    fields = {"max_attempts": 3, "backoff_s": 0.01, "timeout_s": 2.0, "fallback": None} | overrides
    return Receiver(name=name, kind=kind, url=url, **fields)


def _delivery(*receivers_: Receiver, fallback: str | None = None, producer=None, deadline_s: float = 30.0):
    by_name = {r.name: r for r in receivers_}
    route = Route(RouteOpts(receiver=next(iter(by_name), "none")))
    config = Config((), route, (), by_name, fallback_receiver=fallback, external_url=EXTERNAL)
    topics = Topics(KafkaSettings(), load_catalogue(), FileSchemaRegistry())
    return delivery_for(config, KafkaSettings(), producer or RecordingProducer(), topics=topics, deadline_s=deadline_s)


def _serde() -> AvroSerde:
    return AvroSerde(FileSchemaRegistry(), "kestrel.alerts.v1-value", load_schema("alert"))


async def test_webhook_gets_the_v4_payload_once(webhook_sink):
    delivery = _delivery(_receiver("team", "webhook", webhook_sink.url))
    notification = _notification("team")
    result = await delivery.deliver(notification)
    await delivery.close()
    assert (result.delivered, result.ok, result.attempts, result.fallback) == (True, True, 1, None)
    (call,) = webhook_sink.calls
    assert call.body == webhook_payload(notification, EXTERNAL)
    assert call.headers[NOTIFICATION_HEADER] == "n-42" and call.headers["Content-Type"] == "application/json"


async def test_webhook_failing_twice_is_retried_with_backoff(webhook_sink):
    webhook_sink.statuses = [503, 502]
    delivery = _delivery(_receiver("team", "webhook", webhook_sink.url, backoff_s=0.05))
    result = await delivery.deliver(_notification("team"))
    await delivery.close()
    assert (result.delivered, result.attempts) == (True, 3)
    gaps = [b.at - a.at for a, b in zip(webhook_sink.calls, webhook_sink.calls[1:], strict=False)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095, f"exponential backoff: {gaps}"


async def test_webhook_that_keeps_failing_gets_bounded_retries_then_the_fallback(webhook_sink):
    webhook_sink.statuses = [500] * 100
    producer = RecordingProducer()
    delivery = _delivery(
        _receiver("team", "webhook", webhook_sink.url, max_attempts=4, fallback="alerts-topic"),
        _receiver("alerts-topic", "topic"),
        producer=producer,
    )
    notification = _notification("team")
    result = await delivery.deliver(notification)
    await delivery.close()
    assert (result.delivered, result.attempts, result.fallback) == (False, 4, "alerts-topic")
    assert "answered 500" in (result.error or "")
    assert len(webhook_sink.calls) == 4
    assert [r.key for r in producer.records] == [a.fingerprint.encode() for a in notification.alerts]


async def test_the_fallback_chain_is_followed_until_one_takes_it(webhook_sink):
    webhook_sink.statuses = [500] * 100
    producer = RecordingProducer()
    delivery = _delivery(
        _receiver("team", "webhook", webhook_sink.url, max_attempts=2, fallback="backup"),
        _receiver("backup", "webhook", "http://127.0.0.1:1/down", max_attempts=1, fallback="alerts-topic"),
        _receiver("alerts-topic", "topic"),
        producer=producer,
    )
    result = await delivery.deliver(_notification("team"))
    await delivery.close()
    assert (result.fallback, len(webhook_sink.calls), len(producer.records)) == ("alerts-topic", 2, 2)


async def test_client_error_is_not_retried(webhook_sink):
    webhook_sink.statuses = [400]
    delivery = _delivery(_receiver("team", "webhook", webhook_sink.url), _receiver("log", "log"), fallback="log")
    result = await delivery.deliver(_notification("team"))
    await delivery.close()
    assert (result.attempts, result.fallback, len(webhook_sink.calls)) == (1, "log", 1)


async def test_slow_webhook_times_out_per_attempt_and_all_attempts_keep_a_deadline(webhook_sink):
    webhook_sink.delay_s = 5.0
    delivery = _delivery(
        _receiver("team", "webhook", webhook_sink.url, max_attempts=50, timeout_s=0.2, backoff_s=0.01),
        deadline_s=1.0,
    )
    started = time.monotonic()
    result = await delivery.deliver(_notification("team"))
    elapsed = time.monotonic() - started
    await delivery.close()
    assert not result.delivered and result.fallback == receivers.BUILTIN_FALLBACK
    assert 0.9 <= elapsed < 2.5, elapsed
    assert 2 <= len(webhook_sink.calls) <= 6


async def test_without_a_fallback_the_log_and_the_alerts_topic_take_it(webhook_sink):
    webhook_sink.statuses = [503] * 10
    producer = RecordingProducer()
    delivery = _delivery(_receiver("team", "webhook", webhook_sink.url, max_attempts=2), producer=producer)
    notification = _notification("team")
    result = await delivery.deliver(notification)
    await delivery.close()
    assert (result.delivered, result.fallback) == (False, receivers.BUILTIN_FALLBACK)
    assert [_serde().deserialize(r.value) for r in producer.records] == [
        alert_record(a, receivers.SOURCE) for a in notification.alerts
    ]


async def test_unreachable_webhook_and_broken_topic_still_do_not_raise():
    delivery = _delivery(
        _receiver("team", "webhook", "http://127.0.0.1:1/hook", max_attempts=2), producer=RecordingProducer(fail=True)
    )
    result = await delivery.deliver(_notification("team"))
    await delivery.close()
    assert not result.delivered and "ClientConnectorError" in (result.error or "")


async def test_unknown_receiver_falls_back():
    producer = RecordingProducer()
    result = await _delivery(producer=producer).deliver(_notification("nobody"))
    assert (result.delivered, result.fallback, len(producer.records)) == (False, receivers.BUILTIN_FALLBACK, 2)


async def test_topic_receiver_writes_each_alert_keyed_by_fingerprint():
    producer = RecordingProducer()
    resolved = _alert("amount", "resolved")
    result = await _delivery(_receiver("retrain", "topic"), producer=producer).deliver(
        _notification("retrain", resolved, _alert("mcc"))
    )
    assert result.delivered
    assert [r.topic for r in producer.records] == ["kestrel.alerts.v1"] * 2
    assert [r.key for r in producer.records] == [resolved.fingerprint.encode(), _alert("mcc").fingerprint.encode()]
    decoded = [_serde().deserialize(r.value) for r in producer.records]
    assert [d["status"] for d in decoded] == ["resolved", "firing"]
    assert dict(producer.records[0].headers)["notification_id"] == b"n-42"


async def test_topic_receiver_retries_a_broker_outage():
    producer = RecordingProducer(fail=True)
    result = await _delivery(_receiver("retrain", "topic", max_attempts=2), producer=producer).deliver(
        _notification("retrain")
    )
    assert (result.delivered, result.attempts) == (False, 2)


async def test_alertmanager_receiver_pushes_to_api_v2_alerts(webhook_sink):
    base = webhook_sink.url.removesuffix("/hook")
    delivery = _delivery(_receiver("am", "alertmanager", base))
    notification = _notification("am")
    assert (await delivery.deliver(notification)).delivered
    await delivery.close()
    (call,) = webhook_sink.calls
    assert call.path == "/api/v2/alerts"
    assert call.body == alertmanager_alerts(notification.alerts, EXTERNAL)


def test_a_webhook_without_url_is_refused_at_start():
    with pytest.raises(receivers.ReceiverError, match="needs a url"):
        _delivery(_receiver("team", "webhook", None))


async def test_concurrent_deliveries_share_one_session(webhook_sink):
    delivery = _delivery(_receiver("team", "webhook", webhook_sink.url))
    results = await asyncio.gather(*(delivery.deliver(_notification("team")) for _ in range(10)))
    await delivery.close()
    assert all(r.delivered for r in results) and len(webhook_sink.calls) == 10
