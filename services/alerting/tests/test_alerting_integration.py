"""The alerting service in-process against the real broker: the Alertmanager behaviours, end to end to a webhook."""

from __future__ import annotations

import asyncio
import time

import pytest

from kestrel.alerting import silences
from kestrel.alerting.service import SERVICE
from kestrel.alerting.settings import AlertingSettings
from kestrel.alerting.silence_store import TopicSilenceStore

pytestmark = pytest.mark.integration

FEATURE_DRIFT = {
    "alert": "FeatureDrift",
    "expr": "feature_drifted == true",
    "for": "2s",
    "keep_firing_for": "2s",
    "annotations": {"summary": "{{ $labels.feature }} drifted"},
}


def settings(topics, rules, tmp_path) -> AlertingSettings:
    return AlertingSettings(
        kafka_bootstrap=topics.bootstrap,
        topic_prefix=topics.prefix,
        rules_file=str(rules),
        metrics_port=0,
        health_port=0,
        session_timeout_ms=3000,
        tick_interval_s=0.2,
        signals_interval_s=3600,
        data_dir=str(tmp_path / "faust"),
        api_port=0,
    )


async def test_pending_firing_grouped_repeated_then_resolved_after_keep_firing_for(
    tmp_path, topics, webhook, send_report, rules_file, report
):
    rules = rules_file([FEATURE_DRIFT], route={"group_interval": "1s", "repeat_interval": "4s"})
    app = SERVICE.app(settings(topics, rules, tmp_path))
    await app.start()
    try:
        sent = time.monotonic()
        await send_report(report("m1", ["amount", "hour", "velocity"]))
        await webhook.wait_for(1, status="firing")
        assert time.monotonic() - sent >= 2.0, "fired before `for` passed (it must be pending first)"
        first = webhook.payloads[0]
        assert first["groupLabels"] == {"alertname": "FeatureDrift", "model": "m1"}
        assert sorted(a["labels"]["feature"] for a in first["alerts"]) == ["amount", "hour", "velocity"]
        assert first["version"] == "4" and first["receiver"] == "hook" and first["externalURL"] == "http://kestrel.test"

        await webhook.wait_for(2, status="firing", timeout_s=15)  # repeat_interval: the same alerts again
        repeated = webhook.matching("firing")[1]
        assert [a["fingerprint"] for a in repeated["alerts"]] == [a["fingerprint"] for a in first["alerts"]]

        cleared, before = time.monotonic(), len(webhook.payloads)
        await send_report(report("m1", []))
        await webhook.wait_for(1, status="resolved", timeout_s=20)
        # The three alerts resolve on their own partitions' ticks, so (as in Alertmanager) a flush may carry some
        # resolved beside firing ones; each resolved alert is notified once, then leaves the group.
        after = list(zip(webhook.arrived[before:], webhook.payloads[before:], strict=True))
        resolved = [(t, a) for t, p in after for a in p["alerts"] if a["status"] == "resolved"]
        assert min(t for t, _ in resolved) - cleared >= 2.0, "resolved before keep_firing_for passed"
        assert sorted(a["labels"]["feature"] for _, a in resolved) == ["amount", "hour", "velocity"]
        assert after[-1][1]["status"] == "resolved"
        assert app.runtime.ready()
    finally:
        await app.stop()


async def test_inhibition_and_silence_mute_their_alerts(
    tmp_path, topics, webhook, send_report, rules_file, report, kafka
):
    model_drift = {"alert": "ModelDrift", "expr": "drift_share >= 0.5", "severity": "critical"}
    inhibit = [{"source_matchers": ['alertname="ModelDrift"'], "target_matchers": ['alertname="FeatureDrift"'],
                "equal": ["model"]}]  # fmt: skip
    rules = rules_file([model_drift, dict(FEATURE_DRIFT, **{"for": "0s"})], inhibit_rules=inhibit)
    app = SERVICE.app(settings(topics, rules, tmp_path))
    await app.start()
    try:
        await silence(app.runtime.settings, 'model="m2"')
        await asyncio.sleep(1.0)  # the silence reaches every replica's global table
        await send_report(report("m1", ["amount", "hour", "velocity"]))  # ModelDrift inhibits FeatureDrift
        await send_report(report("m2", ["amount"]))  # silenced
        await send_report(report("m3", ["amount"]))  # drift_share 0.25: FeatureDrift only, notified
        await webhook.wait_for(1, alertname="FeatureDrift", model="m3")
        await webhook.wait_for(1, alertname="ModelDrift", model="m1")
        await asyncio.sleep(2.0)  # a muted notification would have come by now
        assert webhook.matching(alertname="FeatureDrift", model="m1") == []
        assert webhook.matching(model="m2") == []
    finally:
        await app.stop()


async def silence(s: AlertingSettings, matcher: str) -> None:
    """A silence as `kestrel-alerts silence add` makes it: an Avro record on kestrel.alerting-silences.v1."""
    now = int(time.time() * 1000)
    record = silences.new_silence(
        [silences.parse_matcher(matcher)], now_ms=now - 1000, ends_at_ms=now + 3_600_000, created_by="test",
        comment="maintenance",
    )  # fmt: skip
    await TopicSilenceStore(s).put(record)
