"""Alert rules over signals: the pending/firing/resolved state machine of Prometheus, with `for` and `keep_firing_for`.

A drift report arrives once per window, so a condition's value is held between signals: the last observation of
a series (same rule and labels) stands until the next one, or until `stale_after` passes without one, after which
the condition counts as false from last observation + stale_after (as a Prometheus series goes stale). `tick` makes
the time-only transitions (pending -> firing once `for` has passed with the condition held, firing -> resolved once
`keep_firing_for` has passed since it stopped holding).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from kestrel.alerting.config import Rule
from kestrel.alerting.payload import fingerprint
from kestrel.alerting.signals import Signal, drift_signals, platform_signal

__all__ = ["AlertState", "Signal", "alert_labels", "drift_signals", "evaluate", "expired", "platform_signal", "tick"]

RESOLVED_RETENTION_MS = 15 * 60_000
"""Prometheus keeps a resolved alert this long (resolvedRetention) so its resolution is sent; so may the app."""
_TEMPLATE = re.compile(r"{{\s*(.*?)\s*}}")


@dataclass(frozen=True)
class AlertState:
    """One alert (rule + labels); `state` is pending, firing, resolved, or inactive (a pending alert whose
    condition stopped before `for`: never notified; the app drops it, as Prometheus deletes it)."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    active_since_ms: int
    starts_at_ms: int | None
    ends_at_ms: int | None
    last_true_ms: int
    last_seen_ms: int = 0
    """When the series was last observed (true or false)."""
    keep_firing_since_ms: int | None = None
    """When the condition first stopped holding while firing (Prometheus' KeepFiringSince)."""
    generator_url: str = ""
    """The link that explains the alert: the drift report of its last observation."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> AlertState:
        return cls(**json.loads(text))


def alert_labels(rule: Rule, signal: Signal) -> dict[str, str]:
    """The signal's labels, then the rule's labels over them, then severity and alertname (as Prometheus)."""
    return {**signal.get("labels", {}), **rule.labels, "severity": rule.severity, "alertname": rule.name}


def evaluate(rules: Sequence[Rule], signal: Signal, states: Mapping[str, AlertState], now_ms: int) -> list[AlertState]:
    """The new states of the alerts this signal observes at now_ms (a rule observes signals of its scope); an
    observation older than the latest one of its series changes nothing, so replayed signals are harmless."""
    changed = []
    for rule in rules:
        if rule.scope != signal.get("scope"):
            continue
        labels = alert_labels(rule, signal)
        fp = fingerprint(labels)
        old = states.get(fp)
        if old is not None and now_ms < old.last_seen_ms:
            continue  # older than the series' latest observation: a replay (faust#502) or a late duplicate
        holds = rule.condition.holds(signal.get("values", {}))
        new = _observe(rule, old, fp, labels, signal, holds, now_ms)
        if new is not None:
            changed.append(new)
    return changed


def tick(rules: Sequence[Rule], states: Mapping[str, AlertState], now_ms: int) -> list[AlertState]:
    """The alerts whose state changes with time alone (a rule removed from the config resolves its alerts)."""
    by_name = {rule.name: rule for rule in rules}
    changed = []
    for state in states.values():
        new = _advance(by_name.get(state.rule), state, now_ms)
        if new != state:
            changed.append(new)
    return changed


def expired(state: AlertState, now_ms: int) -> bool:
    """Whether the app may forget this alert: inactive, or resolved longer ago than RESOLVED_RETENTION_MS."""
    if state.state == "inactive":
        return True
    return state.state == "resolved" and now_ms - (state.ends_at_ms or 0) > RESOLVED_RETENTION_MS


def _observe(
    rule: Rule, old: AlertState | None, fp: str, labels: dict[str, str], signal: Signal, holds: bool, now_ms: int
) -> AlertState | None:
    if not holds:
        if old is None or old.state in ("resolved", "inactive"):
            return None
        return _stopped(rule, replace(old, last_seen_ms=now_ms), now_ms, now_ms)
    annotations = render(rule.annotations, labels, signal)
    url = str(signal.get("report_url") or "")
    if old is None or old.state in ("resolved", "inactive"):
        old = AlertState(fp, rule.name, labels, annotations, "pending", now_ms, None, None, now_ms, now_ms)
    state = replace(
        old, labels=labels, annotations=annotations, last_true_ms=now_ms, last_seen_ms=now_ms,
        keep_firing_since_ms=None, generator_url=url or old.generator_url,
    )  # fmt: skip
    return _promote(rule, state, now_ms)


def _promote(rule: Rule, state: AlertState, now_ms: int) -> AlertState:
    if state.state == "pending" and now_ms - state.active_since_ms >= rule.for_ms:
        return replace(state, state="firing", starts_at_ms=now_ms)
    return state


def _stopped(rule: Rule, state: AlertState, since_ms: int, now_ms: int) -> AlertState:
    """The condition does not hold since `since_ms`: pending becomes inactive, firing keeps firing for
    keep_firing_for from the first time it stopped holding, then resolves (endsAt = this evaluation)."""
    if state.state == "pending":
        return replace(state, state="inactive")
    if state.state != "firing":
        return state
    kfs = state.keep_firing_since_ms if state.keep_firing_since_ms is not None else since_ms
    if now_ms - kfs < rule.keep_firing_for_ms:
        return replace(state, keep_firing_since_ms=kfs)
    return replace(state, state="resolved", ends_at_ms=now_ms, keep_firing_since_ms=kfs)


def _advance(rule: Rule | None, state: AlertState, now_ms: int) -> AlertState:
    if state.state not in ("pending", "firing"):
        return state
    if rule is None:
        gone = "inactive" if state.state == "pending" else "resolved"
        return replace(state, state=gone, ends_at_ms=now_ms if gone == "resolved" else None)
    stale_at = state.last_seen_ms + rule.stale_after_ms
    if now_ms >= stale_at:
        return _stopped(rule, state, stale_at, now_ms)
    if state.last_true_ms < state.last_seen_ms:
        return _stopped(rule, state, state.last_seen_ms, now_ms)
    return _promote(rule, state, now_ms)


def render(templates: Mapping[str, str], labels: Mapping[str, str], signal: Signal) -> dict[str, str]:
    """Expands {{ $labels.x }}, {{ $values.x }} (| humanize, | humanizePercentage), {{ $report_url }},
    {{ $report_id }}; a value the signal lacks renders as "n/a"; an annotation that renders empty is left out
    (e.g. the report link when no report_url is configured)."""
    values = signal.get("values", {})

    def expand(found: re.Match[str]) -> str:
        ref, _, pipe = (part.strip() for part in found.group(1).partition("|"))
        if ref in ("$report_url", "$report_id"):
            return str(signal.get(ref[1:], ""))
        kind, _, name = ref[1:].partition(".")
        value = labels.get(name) if kind == "labels" else values.get(name)
        return _format(value, pipe)

    rendered = {key: _TEMPLATE.sub(expand, text) for key, text in templates.items()}
    return {key: text for key, text in rendered.items() if text.strip()}


def _format(value: Any, pipe: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if pipe == "humanizePercentage":
        return f"{value * 100:.4g}%"
    return humanize(value) if pipe == "humanize" else f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus' humanize: 4 significant digits with an SI prefix (12.35k, 1.5M, 250m)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.4g}"
    prefix = ""
    for candidate in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
        if abs(value) < 1000:
            break
        prefix, value = candidate, value / 1000
    for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):  # only below 1, so never after the loop above
        if abs(value) >= 1:
            break
        prefix, value = candidate, value * 1000
    return f"{value:.4g}{prefix}"
