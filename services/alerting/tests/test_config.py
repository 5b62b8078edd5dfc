"""Loading rules.yaml: defaults, inheritance, and one clear error line per mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.alerting.config import Config, ConfigError, load_config
from kestrel.alerting.matchers import parse_duration_ms, parse_matcher

REPO = Path(__file__).resolve().parents[3]


def test_the_default_rules_file_loads_with_the_rules_the_platform_needs() -> None:
    config = load_config(REPO / "infra/alerting/rules.yaml")
    names = {r.name for r in config.rules}
    assert names == {
        "FeatureDrift", "ScoreDrift", "PerformanceDegraded", "PerformanceEstimateDrop", "InsufficientData",
        "ConsumerLagHigh", "DeadLetterRate",
    }  # fmt: skip
    assert {r.name: r.scope for r in config.rules}["FeatureDrift"] == "feature"
    assert config.receivers["oncall-webhook"].fallback == "alerts-log"
    assert config.route.routes[0].continue_ and config.route.routes[0].opts.receiver == "oncall-webhook"


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30s", 30_000), ("5m", 300_000), ("4h", 14_400_000), ("1h30m", 5_400_000), ("1d", 86_400_000),
     ("250ms", 250), ("1w", 604_800_000), ("0", 0), ("2h0m5s", 7_205_000)],
)  # fmt: skip
def test_durations_in_prometheus_syntax(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["5", "5x", "m5", "30m1h", "", "1.5h", "-1s", "5 m", 30])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration_ms(text)


@given(st.lists(st.integers(0, 500), min_size=6, max_size=6))
def test_durations_add_up_their_units(parts: list[int]) -> None:
    text = "".join(f"{n}{u}" for n, u in zip(parts, ("w", "d", "h", "m", "s", "ms"), strict=True) if n)
    expected = sum(n * u for n, u in zip(parts, (604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1), strict=True))
    assert parse_duration_ms(text or "0") == expected


def test_route_defaults_are_alertmanagers_and_children_inherit(config_from: Callable[..., Config]) -> None:
    config = config_from("""
route:
  receiver: topic
  group_by: [alertname, model]
  repeat_interval: 1h
  labels: {team: ml, pager: "no"}
  routes:
    - matchers: ['severity="critical"', 'team=~"ml|data"']
      group_wait: 5s
      labels: {pager: "yes"}
      routes:
        - matchers: [model!="shadow"]
""")
    root, child = config.route, config.route.routes[0]
    assert (root.opts.group_wait_ms, root.opts.group_interval_ms, root.opts.repeat_interval_ms) == (
        30_000,
        300_000,
        3_600_000,
    )
    assert child.opts.group_by == ("alertname", "model") and child.opts.repeat_interval_ms == 3_600_000
    assert child.opts.group_wait_ms == 5000 and child.opts.receiver == "topic"
    assert child.routes[0].opts.group_wait_ms == 5000
    assert dict(root.opts.labels) == {"team": "ml", "pager": "no"}
    assert dict(child.routes[0].opts.labels) == {"team": "ml", "pager": "yes"}  # merged over the parent's
    assert child.key == '{}/{severity="critical",team=~"ml|data"}'
    assert child.routes[0].key == '{}/{severity="critical",team=~"ml|data"}/{model!="shadow"}'


def test_group_by_dots_groups_by_every_label(config_from: Callable[..., Config]) -> None:
    config = config_from("route: {receiver: topic, group_by: ['...']}")
    assert config.route.opts.group_by_all


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("rules: [{alert: X, expr: 'drift_share >> 0.3'}]", "rule 'X': expr: "),
        ("rules: [{alert: X, expr: 'drift_shar > 0.3'}]", "rule 'X': expr: unknown field 'drift_shar'"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', for: 5x}]", "rule 'X': for: invalid duration '5x'"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', keep_firing_for: soon}]", "rule 'X': keep_firing_for: invalid"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', stale_after: 0s}]", "rule 'X': stale_after: must be more"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', severity: high}]", "rule 'X': severity: 'high' is not one of"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', fro: 5m}]", "rule 'X': unknown field 'fro'"),
        ("rules: [{alert: X}]", "rule 'X': expr: required"),
        ("rules: [{expr: 'drift_share > 0.3'}]", "rules[0]: alert: required"),
        ("rules: [{alert: X, expr: 'status > \"drift\"'}]", "rule 'X': expr: a string compares only with =="),
        ("rules: [{alert: X, expr: 'status == 1'}]", "rule 'X': expr: status holds a string"),
        ("rules: [{alert: X, expr: 'drift_share == \"high\"'}]", "rule 'X': expr: drift_share holds a number"),
        ("rules: [{alert: X, expr: 'consumer_lag > 1 and drift_share > 0.1'}]", "rule 'X': expr: mixes platform"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3'}, {alert: X, expr: 'drift_share > 0.3'}]", "defined twice"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', annotations: {s: '{{ $vals.x }}'}}]",
         "rule 'X': annotations.s: unknown template"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', labels: {team: [a]}}]", "rule 'X': labels.team"),
        ("rules: [{alert: X, expr: 'drift_share > 0.3', labels: {severity: page}}]",
         "rule 'X': labels.severity: set by the rule"),
        ("route: {receiver: nowhere}", "route: receiver: unknown receiver 'nowhere'"),
        ("route: {receiver: topic, group_wait: 10}", "route: group_wait: invalid duration"),
        ("route: {receiver: topic, group_interval: 0}", "route: group_interval: must be more than 0"),
        ("route: {receiver: topic, matchers: ['a=\"b\"']}", "route: the root route takes no matchers"),
        ("route: {receiver: topic, routes: [{matchers: ['a==b']}]}", "route.routes[0]: matchers: bad matcher"),
        ("route: {receiver: topic, routes: [{matchers: ['a=~\"(\"']}]}", "route.routes[0]: matchers: bad regex"),
        ("route: {receiver: topic, routes: [{receiver: x}]}", "route.routes[0]: receiver: unknown receiver 'x'"),
        ("route: {receiver: topic, group_by: ['...', a]}", "route: group_by: '...'"),
        ("route: {receiver: topic, labels: {team: [a]}}", "route.labels.team: a label name"),
        ("route: {receiver: topic, routes: [{labels: {9x: a}}]}", "route.routes[0].labels.9x: a label name"),
        ("inhibit_rules: [{source_matchers: ['a=\"b\"']}]", "inhibit_rules[0]: source_matchers and target_matchers"),
        ("receivers: [{name: w, kind: webhook}]", "receiver 'w': url: an http(s) URL is required"),
        ("receivers: [{name: w, kind: pager}]", "receiver 'w': kind: 'pager' is not one of"),
        ("receivers: [{name: t, kind: topic, max_attempts: 200}]", "receiver 't': max_attempts: 200 must be"),
        ("receivers: [{name: t, kind: topic, backoff: 1h}]", "receiver 't': backoff must be within"),
        ("receivers: [{name: t, kind: topic, fallback: u}]", "receiver 't': fallback: unknown receiver 'u'"),
        ("receivers: [{name: t, kind: log, fallback: u}, {name: u, kind: log, fallback: t}]",
         "receiver 't': fallback: chain loops back to 't'"),
        ("fallback_receiver: nobody", "fallback_receiver: unknown receiver 'nobody'"),
        ("colour: blue", "config: unknown field 'colour'"),
    ],
)  # fmt: skip
def test_config_errors_name_the_item_and_field_in_one_line(
    yaml_text: str, message: str, config_from: Callable[..., Config]
) -> None:
    base = "route: {receiver: topic}\nreceivers: [{name: topic, kind: topic}]\n"
    if yaml_text.startswith("receivers"):
        base = "route: {receiver: t}\n"
        yaml_text = yaml_text.replace("[{name: w", "[{name: t, kind: topic}, {name: w")
    with pytest.raises(ConfigError) as caught:
        config_from(yaml_text, base)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('severity!="critical"', {}, True),
        ('team=~"ml|data"', {"team": "data"}, True),
        ('team=~"ml|data"', {"team": "mlops"}, False),  # anchored, as Alertmanager
        ('team!~"ml.*"', {"team": "mlops"}, False),
        ('team=""', {}, True),  # a missing label is the empty string
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
    ],
)
def test_matchers_follow_alertmanager(text: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(text).matches(labels) is hit
