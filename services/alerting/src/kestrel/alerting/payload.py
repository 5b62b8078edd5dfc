"""What receivers get: Alertmanager's fingerprint, its v4 webhook payload, its /api/v2/alerts body, and the
kestrel.alerts.v1 record."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kestrel.alerting.routing import Notification
    from kestrel.alerting.rules import AlertState

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time.Time: Alertmanager's endsAt of a firing alert in a webhook."""


def fingerprint(labels: Mapping[str, str]) -> str:
    """prometheus/common model.LabelSet.Fingerprint().String(): FNV-1a 64 over the labels sorted by name, each
    name and value followed by 0xff, as 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + bytes([_SEPARATOR]):
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ms: int | None) -> str:
    """Go's time.Time JSON form in UTC (RFC 3339, fractional seconds without trailing zeros); None is zero time."""
    if ms is None:
        return ZERO_TIME
    stamp = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{ms % 1000:03d}".rstrip("0").rstrip(".")
    return f"{stamp}{fraction}Z"


def webhook_payload(n: Notification, external_url: str) -> dict[str, Any]:
    """The body Alertmanager's webhook receiver POSTs (version 4)."""
    alerts = [_webhook_alert(a) for a in n.alerts]
    return {
        "receiver": n.receiver,
        "status": n.status,
        "alerts": alerts,
        "notification_reason": n.reason,
        "groupLabels": _sorted(n.group_labels),
        "commonLabels": _sorted(_common([a.labels for a in n.alerts])),
        "commonAnnotations": _sorted(_common([a.annotations for a in n.alerts])),
        "routeLabels": _sorted(n.route_labels),
        "externalURL": external_url,
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
    }


def _webhook_alert(a: AlertState) -> dict[str, Any]:
    resolved = a.state == "resolved"
    return {
        "status": "resolved" if resolved else "firing",
        "labels": _sorted(a.labels),
        "annotations": _sorted(a.annotations),
        "startsAt": rfc3339(a.starts_at_ms),
        "endsAt": rfc3339(a.ends_at_ms if resolved else None),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint,
    }


def _sorted(pairs: Mapping[str, str]) -> dict[str, str]:
    """Keys in order, as Go's encoding/json writes a map."""
    return dict(sorted(pairs.items()))


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map has with the same value (Alertmanager's commonLabels / commonAnnotations)."""
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


def alertmanager_alerts(
    alerts: Sequence[AlertState], generator_url: str, *, now_ms: int | None = None, valid_for_ms: int = 4 * 60_000
) -> list[dict[str, Any]]:
    """The body of POST /api/v2/alerts. A resolved alert carries its endsAt; a firing one carries now + valid_for
    when now_ms is given (as Prometheus sends, so Alertmanager resolves it if pushes stop), else no endsAt (then
    Alertmanager's resolve_timeout applies): either way, push firing alerts again well within that time."""
    return [_postable(a, generator_url, now_ms, valid_for_ms) for a in alerts if a.state in ("firing", "resolved")]


def _postable(a: AlertState, generator_url: str, now_ms: int | None, valid_for_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "startsAt": rfc3339(a.starts_at_ms),
        "generatorURL": a.generator_url or generator_url,
    }
    if a.state == "resolved":
        body["endsAt"] = rfc3339(a.ends_at_ms)
    elif now_ms is not None:
        body["endsAt"] = rfc3339(now_ms + valid_for_ms)
    return body


def alert_record(a: AlertState, source: str) -> dict[str, Any]:
    """The kestrel.alerts.v1 record (schemas/alert.avsc); alert_id is the same for a replay of one transition."""
    resolved = a.state == "resolved"
    return {
        "alert_id": alert_id(a),
        "fingerprint": a.fingerprint,
        "name": a.rule,
        "severity": a.labels.get("severity", "none"),
        "status": "resolved" if resolved else "firing",
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "starts_at": a.starts_at_ms if a.starts_at_ms is not None else a.active_since_ms,
        "ends_at": a.ends_at_ms if resolved else None,
        "source": source,
    }


def alert_id(a: AlertState) -> str:
    """One id per transition of one alert: fingerprint, status and startsAt (and endsAt once resolved)."""
    status = "resolved" if a.state == "resolved" else "firing"
    key = f"{a.fingerprint}:{status}:{a.starts_at_ms}:{a.ends_at_ms if status == 'resolved' else ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]
