"""A group's notification log, pure: a notification is logged before it is sent and marked sent after, so a
restart or rebalance sends the unsent ones and never a sent one again (dedup by the notification's id)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kestrel.alerting.routing import Notification
from kestrel.alerting.rules import AlertState

Log = dict[str, Any]
"""{"entries": [{"id", "sent", "notification"}, ...]} in the order logged; JSON-serialisable as it is."""


def empty() -> Log:
    return {"entries": []}


def logged(log: Log, notification_id: str) -> bool:
    return any(e["id"] == notification_id for e in log["entries"])


def record(log: Log, notification: Notification, keep: int) -> Log:
    """The log with `notification` added unsent (unchanged if its id is already there), trimmed to the unsent
    entries plus the `keep` newest sent ones."""
    if logged(log, notification.id):
        return log
    entry = {"id": notification.id, "sent": False, "notification": notification_to_json(notification)}
    return {"entries": _trim([*log["entries"], entry], keep)}


def mark_sent(log: Log, notification_id: str) -> Log:
    return {"entries": [dict(e, sent=True) if e["id"] == notification_id else e for e in log["entries"]]}


def unsent(log: Log) -> list[Notification]:
    return [notification_from_json(e["notification"]) for e in log["entries"] if not e["sent"]]


def _trim(entries: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    sent = [e["id"] for e in entries if e["sent"]]
    dropped = set(sent[: max(0, len(sent) - keep)])
    return [e for e in entries if e["id"] not in dropped]


def notification_to_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "group_key": n.group_key,
        "receiver": n.receiver,
        "status": n.status,
        "alerts": [a.to_json() for a in n.alerts],
        "group_labels": dict(n.group_labels),
        "created_ms": n.created_ms,
        "reason": n.reason,
        "route_labels": dict(n.route_labels),
    }


def notification_from_json(data: Mapping[str, Any]) -> Notification:
    return Notification(
        id=data["id"],
        group_key=data["group_key"],
        receiver=data["receiver"],
        status=data["status"],
        alerts=tuple(AlertState.from_json(a) for a in data["alerts"]),
        group_labels=dict(data["group_labels"]),
        created_ms=data["created_ms"],
        reason=data.get("reason", "unknown"),  # logged before the field existed
        route_labels=dict(data.get("route_labels") or {}),
    )
