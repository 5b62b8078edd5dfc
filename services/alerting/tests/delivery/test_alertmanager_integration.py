"""Against a real Alertmanager (v0.35.0, built by kestrel.devstack): our push body is accepted and read back,
and our webhook payload has the shape, types and formats of the one Alertmanager itself sends."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from kestrel.alerting.payload import alertmanager_alerts, fingerprint, webhook_payload
from kestrel.alerting.routing import Notification
from kestrel.alerting.rules import AlertState
from kestrel.devstack.alertmanager import webhook_config

pytestmark = pytest.mark.integration

T0 = 1_796_000_000_000
GO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
LABELS = {"alertname": "FeatureDrift", "model": "fraud", "feature": "amount", "severity": "warning"}
ANNOTATIONS = {"summary": "amount drifted", "description": "PSI 0.31 over the last window"}


def _alert(state: str = "firing", labels: dict[str, str] | None = None) -> AlertState:
    labels = labels or LABELS
    return AlertState(
        fingerprint=fingerprint(labels),
        rule="FeatureDrift",
        labels=dict(labels),
        annotations=dict(ANNOTATIONS),
        state=state,
        active_since_ms=T0 - 60_000,
        starts_at_ms=T0,
        ends_at_ms=T0 + 120_000 if state == "resolved" else None,
        last_true_ms=T0,
        generator_url="http://kestrel/alerts",
    )


def _notification(alert: AlertState) -> Notification:
    return Notification(
        id="n-1",
        group_key='{}:{alertname="FeatureDrift"}',
        receiver="test-webhook",
        status=alert.state,
        alerts=(alert,),
        group_labels={"alertname": "FeatureDrift"},
        created_ms=T0,
        reason="first notification" if alert.state == "firing" else "all alerts resolved",
    )


async def _post(url: str, body: Any) -> None:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200, await response.text()


async def _get(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.json()


def _shape(value: Any) -> Any:
    """Keys and JSON types, recursively; times are reduced to the word 'time' when they parse as Go's RFC 3339."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    if isinstance(value, str) and GO_TIME.match(value):
        return "time"
    return type(value).__name__


async def test_pushed_alerts_are_read_back_with_our_fingerprint(alertmanager_factory, webhook_sink):
    am = await alertmanager_factory(webhook_config(webhook_sink.url))
    other = {**LABELS, "feature": "mcc"}
    body = alertmanager_alerts([_alert(), _alert(labels=other)], "http://kestrel/alerts")
    await _post(f"{am.url}/api/v2/alerts", body)
    stored = {a["fingerprint"]: a for a in await _get(f"{am.url}/api/v2/alerts")}
    assert set(stored) == {fingerprint(LABELS), fingerprint(other)}
    mine = stored[fingerprint(LABELS)]
    assert (mine["labels"], mine["annotations"], mine["generatorURL"]) == (LABELS, ANNOTATIONS, "http://kestrel/alerts")
    assert mine["startsAt"] == "2026-11-30T00:53:20.000Z" and mine["status"]["state"] == "active"


async def test_resolved_push_resolves_the_same_alert(alertmanager_factory, webhook_sink):
    am = await alertmanager_factory(webhook_config(webhook_sink.url))
    await _post(f"{am.url}/api/v2/alerts", alertmanager_alerts([_alert()], "http://kestrel"))
    await _post(f"{am.url}/api/v2/alerts", alertmanager_alerts([_alert("resolved")], "http://kestrel"))
    assert await _get(f"{am.url}/api/v2/alerts?active=true") == []


async def _both_payloads(alertmanager_factory, webhook_sink, state: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ours, Alertmanager's) for the same alert: Alertmanager's own webhook call, and payload.py's body."""
    am = await alertmanager_factory(webhook_config(webhook_sink.url))
    await _post(f"{am.url}/api/v2/alerts", alertmanager_alerts([_alert()], "http://kestrel/alerts"))
    if state == "resolved":
        await webhook_sink.wait_for(1)
        await _post(f"{am.url}/api/v2/alerts", alertmanager_alerts([_alert("resolved")], "http://kestrel/alerts"))
    theirs = (await webhook_sink.wait_for(2 if state == "resolved" else 1))[-1].body
    return webhook_payload(_notification(_alert(state)), am.url), theirs


@pytest.mark.parametrize("state", ["firing", "resolved"])
async def test_our_webhook_payload_matches_alertmanagers_own(alertmanager_factory, webhook_sink, state):
    ours, theirs = await _both_payloads(alertmanager_factory, webhook_sink, state)
    assert set(ours) == set(theirs), "every top-level field Alertmanager v0.35 sends, and no other"
    shared = {k: v for k, v in theirs.items() if k in ours}
    assert _shape(ours) == _shape(shared), "keys, JSON types and time formats, field by field"
    for key in ("version", "status", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "groupKey",
                "notification_reason", "routeLabels"):  # fmt: skip
        assert ours[key] == theirs[key], key
    (mine,), (their,) = ours["alerts"], theirs["alerts"]
    for key in ("status", "labels", "annotations", "generatorURL", "fingerprint"):
        assert mine[key] == their[key], key
    assert _millis(mine["startsAt"]) == _millis(their["startsAt"])
    assert _millis(mine["endsAt"]) == _millis(their["endsAt"]), "0001-01-01T00:00:00Z while firing, as Go's zero time"


def _millis(text: str) -> str:
    """Alertmanager writes Go's RFC3339Nano (trailing zeros trimmed); compare to the millisecond."""
    head, _, tail = text.rstrip("Z").partition(".")
    return f"{head}.{(tail + '000')[:3]}"
