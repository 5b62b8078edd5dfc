"""Alertmanager's dispatch: route tree with continue, group keys, inhibition, silences, and when a group notifies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.alerting.config import Config, RouteOpts
from kestrel.alerting.matchers import Matcher, parse_matcher
from kestrel.alerting.payload import fingerprint
from kestrel.alerting.routing import (
    GroupState,
    Silence,
    flush_due,
    flushed,
    group_labels,
    inhibited,
    label_set_str,
    routes_for,
    silenced,
)  # fmt: skip
from kestrel.alerting.rules import AlertState

SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN

TREE = """
route:
  receiver: topic
  group_by: [alertname, model]
  routes:
    - matchers: ['severity="critical"']
      receiver: hook
      continue: true
    - matchers: ['team=~"ml|data"']
      receiver: ml
      routes:
        - matchers: ['model="shadow"']
          receiver: topic
          group_by: ['...']
    - matchers: ['team="ml"']
      receiver: never
receivers:
  - {name: topic, kind: topic}
  - {name: hook, kind: webhook, url: 'http://h'}
  - {name: ml, kind: log}
  - {name: never, kind: log}
"""


@pytest.fixture
def tree(config_from: Callable[..., Config]) -> Config:
    return config_from(TREE, "")


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "A"}, ["topic"]),  # no child matches: the root itself
        ({"alertname": "A", "severity": "critical"}, ["hook"]),  # continue, but no later sibling matches
        ({"alertname": "A", "severity": "critical", "team": "ml"}, ["hook", "ml"]),  # continue, then first match
        ({"alertname": "A", "team": "data"}, ["ml"]),  # stops at the first match without continue
        ({"alertname": "A", "team": "ml", "model": "shadow"}, ["topic"]),  # deepest match
    ],
)
def test_route_tree_with_continue(tree: Config, labels: dict[str, str], receivers: list[str]) -> None:
    assert [m.receiver for m in routes_for(tree.route, labels)] == receivers


def test_group_keys_are_alertmanagers(tree: Config) -> None:
    labels = {"alertname": "FeatureDrift", "model": "fraud", "feature": "amount", "severity": "critical"}
    (hook,) = routes_for(tree.route, labels)
    assert hook.group_key.key() == '{}/{severity="critical"}:{alertname="FeatureDrift", model="fraud"}'
    shadow = {"alertname": "A", "team": "ml", "model": "shadow"}
    (deep,) = routes_for(tree.route, shadow)
    assert deep.group_key.key() == '{}/{team=~"ml|data"}/{model="shadow"}:{alertname="A", model="shadow", team="ml"}'
    assert group_labels(RouteOpts("x", ("alertname", "missing")), {"alertname": "A"}) == {"alertname": "A"}


def test_group_label_values_are_quoted_as_go_quotes_them() -> None:
    # LabelSet.String() printed by a Go program against github.com/prometheus/common@v0.62.0
    labels = {"b": 'x\ty"z\x01ü\\\x7f\u2028', "a": "plain"}
    assert label_set_str(labels) == '{a="plain", b="x\\ty\\"z\\x01ü\\\\\\x7f\\u2028"}'
    assert fingerprint(labels) == "821056266132248f"


def test_sibling_routes_with_the_same_matchers_share_a_group_key_but_not_a_uid(
    config_from: Callable[..., Config],
) -> None:
    config = config_from("""
route:
  receiver: topic
  routes:
    - {matchers: ['severity="critical"'], receiver: hook, continue: true}
    - {matchers: ['severity="critical"'], receiver: topic}
receivers: [{name: topic, kind: topic}, {name: hook, kind: webhook, url: 'http://h'}]
""", "")  # fmt: skip
    hook, topic = (m.group_key for m in routes_for(config.route, {"alertname": "A", "severity": "critical"}))
    assert hook.key() == topic.key() == '{}/{severity="critical"}:{alertname="A"}'
    assert hook.uid() != topic.uid()


def test_several_features_share_one_group_key(tree: Config) -> None:
    keys = {
        routes_for(tree.route, {"alertname": "FeatureDrift", "model": "fraud", "feature": f})[0].group_key.key()
        for f in ("amount", "hour", "merchant")
    }
    assert len(keys) == 1


RULES = """
inhibit_rules:
  - source_matchers: ['alertname="PerformanceDegraded"']
    target_matchers: ['alertname="PerformanceEstimateDrop"']
    equal: [model, model_version]
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|critical"']
    equal: [cluster]
"""


@pytest.mark.parametrize(
    ("target", "firing", "muted"),
    [
        ({"alertname": "PerformanceEstimateDrop", "model": "fraud", "model_version": "7"},
         [{"alertname": "PerformanceDegraded", "model": "fraud", "model_version": "7"}], True),
        ({"alertname": "PerformanceEstimateDrop", "model": "fraud", "model_version": "7"},
         [{"alertname": "PerformanceDegraded", "model": "fraud", "model_version": "8"}], False),  # equal differs
        ({"alertname": "PerformanceEstimateDrop", "model": "fraud"},
         [{"alertname": "PerformanceDegraded", "model": "fraud"}], True),  # absent equals absent
        ({"alertname": "PerformanceEstimateDrop", "model": "fraud", "model_version": "7"}, [], False),
        ({"alertname": "X", "severity": "warning", "cluster": "a"}, [{"alertname": "Y", "severity": "critical",
         "cluster": "a"}], True),
        # matches both sides: a source that matches both sides too cannot mute it
        ({"alertname": "X", "severity": "critical", "cluster": "a"}, [{"alertname": "Y", "severity": "critical",
         "cluster": "a"}], False),
    ],
)  # fmt: skip
def test_inhibition_with_equal_labels(
    config_from: Callable[..., Config], target: dict[str, str], firing: list[dict[str, str]], muted: bool
) -> None:
    rules = config_from(RULES).inhibit_rules
    assert inhibited(target, firing, rules) is muted


def test_silences_with_regex_matchers_and_expiry() -> None:
    silence = Silence("s1", (parse_matcher('alertname=~"Feature.*"'), parse_matcher('model!="shadow"')),
                      10 * MIN, 20 * MIN, "ana", "retraining")  # fmt: skip
    labels = {"alertname": "FeatureDrift", "model": "fraud"}
    assert not silenced(labels, [silence], 10 * MIN - 1)
    assert silenced(labels, [silence], 10 * MIN) and silenced(labels, [silence], 20 * MIN - 1)
    assert not silenced(labels, [silence], 20 * MIN)  # expired at ends_at
    assert not silenced({"alertname": "FeatureDrift", "model": "shadow"}, [silence], 15 * MIN)
    assert not silenced({"alertname": "XFeatureDrift"}, [silence], 15 * MIN)  # anchored regex
    assert Silence.from_json(silence.to_json()) == silence


OPTS = RouteOpts("hook", ("alertname", "model"), False, 30 * SEC, 5 * MIN, 4 * HOUR)


def _alert(feature: str, state: str = "firing", starts: int = 0, ends: int | None = None) -> AlertState:
    labels = {"alertname": "FeatureDrift", "model": "fraud", "feature": feature}
    return AlertState(fingerprint(labels), "FeatureDrift", labels, {}, state, starts, starts, ends, starts, starts)


class Group:
    """A group driven like the app drives it: flush_due, then flushed, at each timer pass."""

    def __init__(self, first_seen: int = 0) -> None:
        self.state = GroupState('{}:{alertname="FeatureDrift", model="fraud"}', "hook", first_seen, None, {})
        self.sent: list[tuple[int, str, list[tuple[str, str]]]] = []
        self.reasons: list[str] = []

    def at(self, now: int, alerts: list[AlertState]) -> None:
        note = flush_due(self.state, OPTS, alerts, now)
        if note:
            self.sent.append((now, note.status, [(a.labels["feature"], a.state) for a in note.alerts]))
            self.reasons.append(note.reason)
        self.state = flushed(self.state, OPTS, alerts, now)


def test_several_features_group_into_one_notification_after_group_wait() -> None:
    group = Group()
    alerts = [_alert("amount"), _alert("hour", starts=10 * SEC)]
    group.at(29 * SEC, alerts)
    group.at(30 * SEC, alerts)
    assert group.sent == [(30 * SEC, "firing", [("amount", "firing"), ("hour", "firing")])]


def test_an_alert_older_than_group_wait_flushes_at_once() -> None:
    group = Group(first_seen=HOUR)
    group.at(HOUR, [_alert("amount", starts=HOUR - MIN)])
    assert len(group.sent) == 1


def test_new_alerts_wait_for_group_interval_and_unchanged_groups_repeat_after_repeat_interval() -> None:
    group = Group()
    one, two = [_alert("amount")], [_alert("amount"), _alert("hour", starts=MIN)]
    for now in range(30 * SEC, 5 * HOUR, 30 * SEC):
        group.at(now, one if now < MIN else two)
    times = [t for t, _, _ in group.sent]
    # first at group_wait; the new alert at the next group_interval tick; repeats every 4h from the last send
    assert times == [30 * SEC, 5 * MIN + 30 * SEC, 4 * HOUR + 5 * MIN + 30 * SEC]
    assert [len(alerts) for _, _, alerts in group.sent] == [1, 2, 2]
    assert group.reasons == ["first notification", "new alerts added", "repeat interval elapsed"]


def test_resolved_is_sent_once_and_a_group_that_never_notified_stays_silent() -> None:
    group = Group()
    group.at(30 * SEC, [_alert("amount"), _alert("hour")])
    resolved = [_alert("amount", "resolved", ends=MIN), _alert("hour")]
    group.at(5 * MIN + 30 * SEC, resolved)
    group.at(10 * MIN + 30 * SEC, resolved)  # unchanged: no repeat yet, and "amount" not resolved twice
    both = [_alert("amount", "resolved", ends=MIN), _alert("hour", "resolved", ends=6 * MIN)]
    group.at(15 * MIN + 30 * SEC, both)
    group.at(20 * MIN + 30 * SEC, both)
    assert [(s, a) for _, s, a in group.sent] == [
        ("firing", [("amount", "firing"), ("hour", "firing")]),
        ("firing", [("amount", "resolved"), ("hour", "firing")]),
        ("resolved", [("hour", "resolved")]),
    ]
    assert group.reasons == ["first notification", "some alerts resolved", "all alerts resolved"]
    silent = Group()
    silent.at(30 * SEC, [_alert("amount", "resolved", ends=10 * SEC)])
    assert silent.sent == []


def test_a_resolved_alert_kept_in_the_group_is_not_sent_again_with_a_repeat() -> None:
    group = Group()
    group.at(30 * SEC, [_alert("amount"), _alert("hour")])
    kept = [_alert("amount", "resolved", ends=MIN), _alert("hour")]
    for now in range(5 * MIN + 30 * SEC, 9 * HOUR, 5 * MIN):
        group.at(now, kept)
    assert [a for _, _, a in group.sent] == [
        [("amount", "firing"), ("hour", "firing")],
        [("amount", "resolved"), ("hour", "firing")],
        [("hour", "firing")],  # the repeat after 4h
        [("hour", "firing")],
    ]


def test_pending_alerts_are_not_sent() -> None:
    group = Group()
    group.at(30 * SEC, [_alert("amount", "pending")])
    assert group.sent == []


def test_notification_ids_are_deterministic_so_a_replay_dedups() -> None:
    state = GroupState("k", "hook", 0, None, {})
    alerts = [_alert("amount"), _alert("hour")]
    first = flush_due(state, OPTS, alerts, 31 * SEC)
    again = flush_due(state, OPTS, list(reversed(alerts)), 45 * SEC)  # replayed later, alerts in another order
    assert first is not None and again is not None and first.id == again.id and first.created_ms == 30 * SEC
    later = flush_due(replace(state, first_seen_ms=MIN), OPTS, alerts, 2 * MIN)
    assert later is not None and later.id != first.id
    assert GroupState.from_json(flushed(state, OPTS, alerts, 31 * SEC).to_json()) == flushed(
        state, OPTS, alerts, 31 * SEC
    )


@given(st.lists(st.sampled_from(["firing", "resolved", "gone"]), min_size=1, max_size=40))
def test_each_resolution_is_notified_at_most_once(timeline: list[str]) -> None:
    group = Group()
    for step, what in enumerate(timeline):
        now = 30 * SEC + step * 5 * MIN
        alerts = [] if what == "gone" else [_alert("amount", what, ends=now if what == "resolved" else None)]
        group.at(now, alerts)
    statuses = [s for _, s, _ in group.sent]
    assert all(not (a == b == "resolved") for a, b in zip(statuses, statuses[1:], strict=False))


LABEL = st.sampled_from(["a", "b", "c"])
VALUE = st.sampled_from(["", "x", "y"])
MATCHER = st.builds(
    lambda n, op, v: parse_matcher(f'{n}{op}"{v}"'), LABEL, st.sampled_from(["=", "!=", "=~", "!~"]), VALUE
)


@given(st.dictionaries(LABEL, VALUE), st.lists(st.tuples(st.lists(MATCHER, max_size=2), st.booleans()), max_size=4))
def test_every_matched_route_matches_and_the_root_always_answers(
    labels: dict[str, str], children: list[tuple[list[Matcher], bool]]
) -> None:
    from kestrel.alerting.config import parse_config

    routes = [{"matchers": [str(m) for m in ms], "continue": cont, "receiver": f"r{i}"}
              for i, (ms, cont) in enumerate(children)]  # fmt: skip
    receivers = [{"name": "root", "kind": "log"}] + [{"name": f"r{i}", "kind": "log"} for i in range(len(children))]
    config = parse_config({"route": {"receiver": "root", "routes": routes}, "receivers": receivers})
    found = [m.receiver for m in routes_for(config.route, labels)]
    assert found
    for receiver in found:
        if receiver != "root":
            matchers, _ = children[int(receiver[1:])]
            assert all(m.matches(labels) for m in matchers)
    assert found == ["root"] or "root" not in found


@given(st.lists(st.tuples(st.integers(1, 20 * MIN), st.sets(st.sampled_from(["amount", "hour", "day"]))), max_size=30))
def test_a_group_never_notifies_before_group_wait_nor_twice_within_group_interval(
    steps: list[tuple[int, set[str]]],
) -> None:
    group, now = Group(), 0
    for delta, firing in steps:
        now += delta
        group.at(now, [_alert(f) for f in sorted(firing)] or [_alert("amount", "resolved", ends=now)])
    times = [t for t, _, _ in group.sent]
    assert all(t >= OPTS.group_wait_ms for t in times)
    assert all(b - a >= OPTS.group_interval_ms for a, b in zip(times, times[1:], strict=False))
