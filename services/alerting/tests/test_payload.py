"""What receivers get: Alertmanager's fingerprint, the v4 webhook, /api/v2/alerts and the kestrel.alerts.v1 record."""

from __future__ import annotations

import io

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.alerting.payload import alert_record, alertmanager_alerts, fingerprint, rfc3339, webhook_payload
from kestrel.alerting.routing import Notification
from kestrel.alerting.rules import AlertState
from kestrel.common.avro import load_schema, plain_schema

# Computed once (2026-12-03) by this Go program against github.com/prometheus/common@v0.62.0 (go 1.26):
#   package main
#   import ("fmt"; "github.com/prometheus/common/model")
#   func main() {
#       for _, s := range []model.LabelSet{{}, {"alertname": "FeatureDrift"}, ...the sets below...} {
#           fmt.Printf("%s %s\n", s.Fingerprint().String(), s.String())
#       }
#   }
# The first and fourth are also prometheus/common's own test vectors (model/signature_test.go,
# TestMetricToFingerprint and TestLabelsToSignature: 14695981039346656037 and 5799056148416392346).
GO_VECTORS = [
    ({}, "cbf29ce484222325"),
    ({"alertname": "FeatureDrift"}, "eecd873d52b30983"),
    ({"alertname": "FeatureDrift", "model": "fraud", "feature": "amount", "severity": "warning"}, "18c93f5fda80b875"),
    ({"name": "garland, briggs", "fear": "love is not enough"}, "507a62d79ee76c9a"),
    ({"a": "", "b": "ü"}, "f809ba6c583e6a67"),
    ({"alertname": "ConsumerLagHigh", "group": "kestrel-features", "severity": "critical"}, "3dd8fcd1bda341a7"),
]


@pytest.mark.parametrize(("labels", "expected"), GO_VECTORS)
def test_fingerprint_equals_alertmanagers(labels: dict[str, str], expected: str) -> None:
    assert fingerprint(labels) == expected


def test_prometheus_common_vectors_as_integers() -> None:
    assert int(fingerprint({}), 16) == 14695981039346656037
    assert int(fingerprint({"name": "garland, briggs", "fear": "love is not enough"}), 16) == 5799056148416392346


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=6))
def test_fingerprint_ignores_order_and_is_16_hex_digits(labels: dict[str, str]) -> None:
    reordered = dict(reversed(list(labels.items())))
    assert fingerprint(labels) == fingerprint(reordered)
    assert len(fingerprint(labels)) == 16 and int(fingerprint(labels), 16) >= 0


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "0001-01-01T00:00:00Z"), (0, "1970-01-01T00:00:00Z"), (1796295600123, "2026-12-03T11:00:00.123Z"),
     (1796295600500, "2026-12-03T11:00:00.5Z"), (1796295600000, "2026-12-03T11:00:00Z")],
)  # fmt: skip
def test_times_as_go_marshals_them(ms: int | None, text: str) -> None:
    assert rfc3339(ms) == text


def _alert(feature: str, state: str = "firing", **over: object) -> AlertState:
    labels = {"alertname": "FeatureDrift", "model": "fraud", "feature": feature, "severity": "warning"}
    base = AlertState(
        fingerprint(labels), "FeatureDrift", labels, {"summary": f"{feature} drifted", "runbook": "r"},
        state, 0, 1796295600000, 1796299200000 if state == "resolved" else None, 0, 0, None, "http://drift/r-1",
    )  # fmt: skip
    return AlertState(**{**base.__dict__, **over})


def test_webhook_payload_field_by_field() -> None:
    alerts = (_alert("amount"), _alert("hour", "resolved", annotations={"summary": "hour", "runbook": "r"}))
    note = Notification("n1", '{}:{alertname="FeatureDrift", model="fraud"}', "hook", "firing", alerts,
                        {"alertname": "FeatureDrift", "model": "fraud"}, 1796295630000, "some alerts resolved",
                        {"team": "ml", "pager": "no"})  # fmt: skip
    body = webhook_payload(note, "http://kestrel-alerting:8080")
    assert list(body) == ["receiver", "status", "alerts", "notification_reason", "groupLabels", "commonLabels",
                          "commonAnnotations", "routeLabels", "externalURL", "version", "groupKey",
                          "truncatedAlerts"]  # fmt: skip
    assert body["notification_reason"] == "some alerts resolved"
    assert list(body["routeLabels"].items()) == [("pager", "no"), ("team", "ml")]
    assert body["version"] == "4" and body["truncatedAlerts"] == 0 and body["status"] == "firing"
    assert body["receiver"] == "hook" and body["externalURL"] == "http://kestrel-alerting:8080"
    assert body["groupKey"] == '{}:{alertname="FeatureDrift", model="fraud"}'
    assert body["groupLabels"] == {"alertname": "FeatureDrift", "model": "fraud"}
    assert body["commonLabels"] == {"alertname": "FeatureDrift", "model": "fraud", "severity": "warning"}
    assert body["commonAnnotations"] == {"runbook": "r"}
    firing, resolved = body["alerts"]
    assert firing == {
        "status": "firing", "labels": alerts[0].labels, "annotations": alerts[0].annotations,
        "startsAt": "2026-12-03T11:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://drift/r-1", "fingerprint": fingerprint(alerts[0].labels),
    }  # fmt: skip
    assert resolved["status"] == "resolved" and resolved["endsAt"] == "2026-12-03T12:00:00Z"
    assert list(firing["labels"]) == sorted(firing["labels"])  # as Go's encoding/json writes a map


def test_alertmanager_push_body() -> None:
    firing, resolved = _alert("amount", generator_url=""), _alert("hour", "resolved")
    pending = _alert("day", "pending")
    body = alertmanager_alerts([firing, resolved, pending], "http://kestrel")
    assert body[0] == {"labels": firing.labels, "annotations": firing.annotations,
                       "startsAt": "2026-12-03T11:00:00Z", "generatorURL": "http://kestrel"}  # fmt: skip
    assert body[1]["endsAt"] == "2026-12-03T12:00:00Z" and body[1]["generatorURL"] == "http://drift/r-1"
    assert len(body) == 2
    pushed = alertmanager_alerts([firing], "", now_ms=1796295600000)
    assert pushed[0]["endsAt"] == "2026-12-03T11:04:00Z"


def test_alert_record_matches_the_topic_schema_and_replays_keep_their_id() -> None:
    schema = plain_schema(load_schema("alert"))
    firing, resolved = _alert("amount"), _alert("amount", "resolved")
    for alert, status, ends in ((firing, "firing", None), (resolved, "resolved", 1796299200000)):
        record = alert_record(alert, "kestrel-alerting")
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, record)
        buf.seek(0)
        assert fastavro.schemaless_reader(buf, schema) == record
        assert (record["status"], record["ends_at"], record["name"], record["severity"]) == (
            status, ends, "FeatureDrift", "warning")  # fmt: skip
        assert record["fingerprint"] == alert.fingerprint and record["source"] == "kestrel-alerting"
    assert alert_record(firing, "a")["alert_id"] == alert_record(firing, "b")["alert_id"]
    assert alert_record(firing, "a")["alert_id"] != alert_record(resolved, "a")["alert_id"]
