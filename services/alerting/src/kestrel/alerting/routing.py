"""Alertmanager's dispatch, pure: the route tree, group keys, inhibition, silences and when a group notifies.

flush_due follows Alertmanager's aggregation group and dedup stage (dispatch/dispatch.go, notify/dedup_stage.go):
the first flush comes group_wait after the group's first alert (at once when that alert is older than group_wait);
each later flush comes group_interval after the previous one; a flush notifies when an alert is new or newly
firing in the group, when every firing alert has resolved, when an alert resolved since the last notification, or
when repeat_interval has passed since the last one; a group that has only resolved alerts and never notified
stays silent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from kestrel.alerting.config import InhibitRule, Route, RouteOpts
from kestrel.alerting.matchers import Matcher, matches_all, parse_matcher
from kestrel.alerting.rules import AlertState

__all__ = [
    "GroupKey", "GroupState", "Notification", "RouteMatch", "Silence",
    "flush_due", "flushed", "group_labels", "inhibited", "routes_for", "silenced",
]  # fmt: skip


@dataclass(frozen=True)
class GroupKey:
    receiver: str
    route_path: str
    """The route's Alertmanager key, e.g. {}/{severity="critical"}."""
    labels: tuple[tuple[str, str], ...]

    def key(self) -> str:
        """Alertmanager's groupKey: route key, a colon, the group labels as a LabelSet string."""
        return f"{self.route_path}:{label_set_str(dict(self.labels))}"

    def uid(self) -> str:
        """Unique per group: sibling routes with the same matchers share an Alertmanager groupKey, so a table of
        groups is keyed by receiver and groupKey."""
        return f"{self.receiver}|{self.key()}"


class RouteMatch(NamedTuple):
    receiver: str
    opts: RouteOpts
    group_key: GroupKey


def routes_for(route: Route, labels: Mapping[str, str]) -> list[RouteMatch]:
    """The routes an alert goes to, as Alertmanager's Route.Match: the deepest matching routes, siblings tried in
    order until one matches without `continue`; the route itself when no child matches."""
    return [RouteMatch(r.opts.receiver, r.opts, _group_key(r, labels)) for r in _match(route, labels)]


def _match(route: Route, labels: Mapping[str, str]) -> list[Route]:
    if not matches_all(route.matchers, labels):
        return []
    found: list[Route] = []
    for child in route.routes:
        matched = _match(child, labels)
        found += matched
        if matched and not child.continue_:
            break
    return found or [route]


def group_labels(opts: RouteOpts, labels: Mapping[str, str]) -> dict[str, str]:
    """The alert's labels named by group_by (all of them for `...`); a label the alert lacks is left out."""
    if opts.group_by_all:
        return dict(labels)
    return {name: labels[name] for name in opts.group_by if name in labels}


def _group_key(route: Route, labels: Mapping[str, str]) -> GroupKey:
    return GroupKey(route.opts.receiver, route.key, tuple(sorted(group_labels(route.opts, labels).items())))


def label_set_str(labels: Mapping[str, str]) -> str:
    """prometheus/common's LabelSet.String(): `{a="1", b="2"}`, names sorted, values Go-quoted."""
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in sorted(labels.items())) + "}"


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's strconv.Quote: printable characters kept, the rest escaped as \\xNN, \\uNNNN or \\UNNNNNNNN."""
    return '"' + "".join(_go_char(c) for c in text) + '"'


def _go_char(c: str) -> str:
    if c in ('"', "\\"):
        return "\\" + c
    if c in _GO_ESCAPES:
        return _GO_ESCAPES[c]
    if c.isprintable():
        return c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def inhibited(
    alert_labels: Mapping[str, str], firing: Iterable[Mapping[str, str]], rules: Sequence[InhibitRule]
) -> bool:
    """Alertmanager's Inhibitor.Mutes: muted when a rule's target matchers match the alert and a firing alert
    matches its source matchers with the same values (absent counts as equal to absent) for every `equal` label.
    An alert matching both sides cannot be muted by a source that matches both sides too."""
    sources = list(firing)
    for rule in rules:
        if not matches_all(rule.target_matchers, alert_labels):
            continue
        two_sided = matches_all(rule.source_matchers, alert_labels)
        for source in sources:
            if not matches_all(rule.source_matchers, source):
                continue
            if two_sided and matches_all(rule.target_matchers, source):
                continue
            if all(source.get(n, "") == alert_labels.get(n, "") for n in rule.equal):
                return True
    return False


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ms: int
    ends_at_ms: int
    created_by: str
    comment: str

    def active(self, now_ms: int) -> bool:
        """Active from starts_at (inclusive) to ends_at (exclusive), as Alertmanager."""
        return self.starts_at_ms <= now_ms < self.ends_at_ms

    def to_json(self) -> str:
        data = asdict(self) | {"matchers": [str(m) for m in self.matchers]}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Silence:
        data = json.loads(text)
        return cls(**(data | {"matchers": tuple(parse_matcher(m) for m in data["matchers"])}))


def silenced(labels: Mapping[str, str], silences: Iterable[Silence], now_ms: int) -> bool:
    return any(s.active(now_ms) and matches_all(s.matchers, labels) for s in silences)


@dataclass(frozen=True)
class GroupState:
    key: str
    receiver: str
    first_seen_ms: int
    last_flush_ms: int | None
    """When the group last notified (the notification-log timestamp the dedup stage compares repeat_interval to)."""
    last_sent_fingerprints: dict[str, str]
    """fingerprint -> "firing" | "resolved" as last notified."""
    last_tick_ms: int | None = None
    """When the group last flushed, notified or not; its flushes come every group_interval from there."""
    group_labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> GroupState:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Notification:
    id: str
    group_key: str
    receiver: str
    status: str
    """firing when any of its alerts fires, else resolved."""
    alerts: tuple[AlertState, ...]
    group_labels: dict[str, str]
    created_ms: int
    """When the flush was due, computed from the group state (not the wall clock), so a flush replayed after a
    restart builds the same notification and id."""
    reason: str = "unknown"
    """Why it is sent, in Alertmanager's words (its webhook's notification_reason): first notification, new
    alerts added, some alerts resolved, all alerts resolved, repeat interval elapsed."""
    route_labels: dict[str, str] = field(default_factory=dict)


def next_flush_ms(group: GroupState, opts: RouteOpts, alerts: Sequence[AlertState]) -> int:
    """When the group flushes next: group_wait after its first alert (at once for an alert already older than
    group_wait), then group_interval after the last flush."""
    last = group.last_tick_ms if group.last_tick_ms is not None else group.last_flush_ms
    if last is not None:
        return last + opts.group_interval_ms
    oldest = min((a.starts_at_ms for a in alerts if a.starts_at_ms is not None), default=group.first_seen_ms)
    if oldest + opts.group_wait_ms < group.first_seen_ms:
        return group.first_seen_ms
    return group.first_seen_ms + opts.group_wait_ms


def flush_due(group: GroupState, opts: RouteOpts, alerts: Sequence[AlertState], now_ms: int) -> Notification | None:
    """The notification this group sends now, if a flush is due and the dedup stage lets it through.

    alerts: the group's alerts that are neither silenced nor inhibited (pending and inactive ones are ignored);
    a resolved alert already notified as resolved is not sent again."""
    due = next_flush_ms(group, opts, alerts)
    if now_ms < due:
        return None
    sent = group.last_sent_fingerprints
    batch = sorted(
        (a for a in alerts if a.state == "firing" or (a.state == "resolved" and sent.get(a.fingerprint) != "resolved")),
        key=_order,
    )
    reason = _reason(group, batch, opts, due) if batch else None
    if reason is None:
        return None
    status = "firing" if any(a.state == "firing" for a in batch) else "resolved"
    labels = group.group_labels or group_labels(opts, batch[0].labels)
    return Notification(_notification_id(group, batch, due), group.key, group.receiver, status, tuple(batch),
                        labels, due, reason, dict(opts.labels))  # fmt: skip


def flushed(group: GroupState, opts: RouteOpts, alerts: Sequence[AlertState], now_ms: int) -> GroupState:
    """The group after the flush due at now_ms (call it whether flush_due notified or not, once the
    notification is logged): the next flush comes group_interval after this one, as Alertmanager's timer."""
    due = next_flush_ms(group, opts, alerts)
    if now_ms < due:
        return group
    note = flush_due(group, opts, alerts, now_ms)
    if note is None:
        return GroupState(**(asdict(group) | {"last_tick_ms": now_ms}))
    # an alert notified as resolved earlier and still in the group stays recorded, so it is never sent again
    done = {
        a.fingerprint
        for a in alerts
        if a.state == "resolved" and group.last_sent_fingerprints.get(a.fingerprint) == "resolved"
    }
    sent = dict.fromkeys(done, "resolved") | {a.fingerprint: a.state for a in note.alerts}
    changes = {"last_tick_ms": now_ms, "last_flush_ms": now_ms, "last_sent_fingerprints": sent}
    return GroupState(**(asdict(group) | changes))


def _reason(group: GroupState, batch: Sequence[AlertState], opts: RouteOpts, due: int) -> str | None:
    """Alertmanager's dedup stage (notify/dedup_stage.go needsUpdate): why the batch is sent, or None."""
    firing = {a.fingerprint for a in batch if a.state == "firing"}
    resolved = {a.fingerprint for a in batch if a.state == "resolved"}
    last_firing = {fp for fp, s in group.last_sent_fingerprints.items() if s == "firing"}
    last_resolved = {fp for fp, s in group.last_sent_fingerprints.items() if s == "resolved"}
    if group.last_flush_ms is None:
        return "first notification" if firing else None
    if not firing <= last_firing:
        return "new alerts added" if last_firing else "first notification"
    if not firing:
        return "all alerts resolved" if last_firing else None
    if not resolved <= last_resolved:
        return "some alerts resolved"
    return "repeat interval elapsed" if due - group.last_flush_ms >= opts.repeat_interval_ms else None


def _order(alert: AlertState) -> tuple[tuple[int | str, str], ...]:
    """Alertmanager's AlertSlice order: by job, then instance (alerts with them first), then by labels."""
    keys = tuple((0, alert.labels[k]) if k in alert.labels else (1, "") for k in ("job", "instance"))
    return keys + tuple(sorted(alert.labels.items()))


def _notification_id(group: GroupState, batch: Sequence[AlertState], due: int) -> str:
    parts = [group.key, group.receiver, str(due)] + [f"{a.fingerprint}:{a.state}" for a in batch]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
