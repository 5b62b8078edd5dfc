"""From rule evaluation to group updates, pure: which new alert states go to which alert groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kestrel.alerting.config import Config, RouteOpts
from kestrel.alerting.routing import GroupKey, routes_for
from kestrel.alerting.rules import AlertState


def changed(new_states: Sequence[AlertState], old: Mapping[str, AlertState]) -> list[AlertState]:
    """The states that differ from what the table holds: a replayed record changes nothing."""
    return [s for s in new_states if old.get(s.fingerprint) != s]


def notifiable(state: AlertState, previous: AlertState | None) -> bool:
    """Groups see firing alerts and the resolution of an alert that fired; pending ones stay with the rules."""
    if state.state == "firing":
        return True
    return state.state == "resolved" and previous is not None and previous.state == "firing"


def group_keys(config: Config, labels: Mapping[str, str]) -> list[GroupKey]:
    """The alert groups an alert with these labels belongs to: one per matching route (`continue`)."""
    return [match.group_key for match in routes_for(config.route, labels)]


def route_opts(config: Config, key: GroupKey, labels: Mapping[str, str]) -> RouteOpts | None:
    """The timing options of the route a group came from, looked up in the config in force."""
    return next((m.opts for m in routes_for(config.route, labels) if m.group_key == key), None)
