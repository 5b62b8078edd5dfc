"""An alert group's entry in the groups table, pure: its Alertmanager group state, the route it came from and
the latest state of each of its alerts; muting (inhibition, silences) applies here, at notification time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kestrel.alerting.config import Config
from kestrel.alerting.routing import GroupKey, GroupState, Silence, inhibited, silenced
from kestrel.alerting.rules import AlertState

Entry = dict[str, Any]
"""{"p": partition, "group": GroupState JSON, "route": route_json(key), "alerts": {fingerprint: AlertState JSON}}"""


def route_json(key: GroupKey) -> dict[str, Any]:
    return {"receiver": key.receiver, "route_path": key.route_path, "labels": [list(kv) for kv in key.labels]}


def route_key(route: Mapping[str, Any]) -> GroupKey:
    return GroupKey(route["receiver"], route["route_path"], tuple((k, v) for k, v in route["labels"]))


def with_alert(entry: Entry | None, route: Mapping[str, Any], alert: AlertState, partition: int, now_ms: int) -> Entry:
    """The entry with `alert`'s latest state; a new group starts its group_wait at `now_ms`."""
    if entry is None:
        key = route_key(route)
        group = GroupState(key.key(), key.receiver, now_ms, None, {}, group_labels=dict(key.labels))
        entry = {"group": group.to_json(), "route": dict(route), "alerts": {}}
    return {**entry, "p": partition, "alerts": {**entry["alerts"], alert.fingerprint: alert.to_json()}}


def group_state(entry: Entry) -> GroupState:
    return GroupState.from_json(entry["group"])


def alerts(entry: Entry) -> list[AlertState]:
    return [AlertState.from_json(a) for a in entry["alerts"].values()]


def after_flush(entry: Entry, group: GroupState) -> Entry:
    """The entry after a due flush: the new group state, without the resolved alerts that are done (notified
    as resolved, or never notified as firing), as Alertmanager drops resolved alerts once flushed."""
    firing = {fp for fp, status in group.last_sent_fingerprints.items() if status == "firing"}
    kept = {
        fp: text
        for fp, text in entry["alerts"].items()
        if fp in firing or AlertState.from_json(text).state != "resolved"
    }
    return {**entry, "group": group.to_json(), "alerts": kept}


def visible(
    members: Sequence[AlertState],
    firing: Iterable[Mapping[str, str]],
    config: Config,
    silences: Iterable[Silence],
    now_ms: int,
) -> list[AlertState]:
    """The group's alerts minus the firing ones an inhibition rule or an active silence mutes now. A resolved
    alert is never muted: its resolution reaches whoever saw it fire."""
    sources, active = list(firing), list(silences)
    return [
        a
        for a in members
        if a.state != "firing"
        or not (inhibited(a.labels, sources, config.inhibit_rules) or silenced(a.labels, active, now_ms))
    ]
