"""Rules over signals: conditions, drift signals, and Prometheus' pending/firing/resolved timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.alerting.config import Config, ConfigError
from kestrel.alerting.expr import Comparison, Junction, parse_condition
from kestrel.alerting.rules import AlertState, drift_signals, evaluate, expired, humanize, platform_signal, tick

MIN = 60_000
HOUR = 60 * MIN


@pytest.mark.parametrize(
    ("expr", "values", "holds"),
    [
        ("drift_share > 0.3", {"drift_share": 0.5}, True),
        ("drift_share > 0.3", {"drift_share": 0.3}, False),
        ("drift_share >= 0.3", {"drift_share": 0.3}, True),
        ("drift_share > 0.3", {}, False),  # an absent field holds nothing
        ("pr_auc < 0.5", {"pr_auc": None}, False),
        ('status == "drift"', {"status": "drift"}, True),
        ('status != "drift"', {"status": "ok"}, True),
        ("score_drifted == true", {"score_drifted": True}, True),
        ("score_drifted == false", {"score_drifted": True}, False),
        ("drifted_features >= 2 and drift_share > 0.1 or status == \"drift\"", {"drifted_features": 1,
         "drift_share": 0.5, "status": "drift"}, True),
        ("drifted_features >= 2 and (drift_share > 0.1 or status == \"drift\")", {"drifted_features": 1,
         "drift_share": 0.5, "status": "drift"}, False),
        ("consumer_lag > 1e4", {"consumer_lag": 20_000}, True),
        ("dlq_rate <= -1", {"dlq_rate": 0}, False),
    ],
)  # fmt: skip
def test_conditions(expr: str, values: dict[str, Any], holds: bool) -> None:
    assert parse_condition(expr).holds(values) is holds


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "drift_share",
        "drift_share >",
        "(drift_share > 1",
        "drift_share > 1 and",
        'drift_share > 1 xor status == "x"',
        "__import__('os') > 1",
        "drift_share > abc",
    ],
)
def test_malformed_conditions_are_refused(expr: str) -> None:
    with pytest.raises(ConfigError):
        parse_condition(expr)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False))
def test_a_comparison_agrees_with_python(value: float, threshold: float) -> None:
    for op, expected in (("<", value < threshold), (">=", value >= threshold), ("!=", value != threshold)):
        assert parse_condition(f"consumer_lag {op} {threshold!r}").holds({"consumer_lag": value}) is expected


def test_a_report_gives_one_model_signal_then_one_per_feature(report: Callable[..., dict[str, Any]]) -> None:
    signals = drift_signals(report(), report_url="http://drift/reports/{report_id}")
    assert [s["scope"] for s in signals] == ["model", "feature", "feature"]
    model = signals[0]
    assert model["labels"] == {"subject": "predictions", "feature_set_version": "v3", "model": "fraud",
                               "model_version": "7"}  # fmt: skip
    assert model["values"]["drifted_features"] == 1 and model["values"]["drift_share"] == 0.5
    assert model["values"]["score_drifted"] is True and model["values"]["pr_auc_below_band"] is True
    assert model["values"]["estimated_precision_below_band"] is False
    assert model["report_url"] == "http://drift/reports/r-1" and model["at_ms"] == HOUR
    assert [s["labels"]["feature"] for s in signals[1:]] == ["amount", "hour"]
    assert signals[1]["values"]["feature_drifted"] is True and signals[1]["values"]["drift_share"] == 0.5


def test_a_feature_report_without_performance_or_model(report: Callable[..., dict[str, Any]]) -> None:
    signals = drift_signals(report(subject="features", model_name=None, model_version=None, performance=None))
    assert "model" not in signals[0]["labels"] and "pr_auc" not in signals[0]["values"]
    assert signals[0]["report_url"] == ""


def _rules(config_from: Callable[..., Config], rule: str) -> Config:
    return config_from(f"rules: [{rule}]")


def _run(config: Config, steps: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    """Feeds (time, value) steps (value None: a tick only) for one platform series; returns (time, state) changes."""
    states: dict[str, AlertState] = {}
    seen = []
    for at, value in steps:
        if value is None:
            changed = tick(config.rules, states, at)
        else:
            changed = evaluate(config.rules, platform_signal("consumer_lag", {"group": "g"}, value, at), states, at)
        for state in changed:
            states[state.fingerprint] = state
            seen.append((at, state.state))
    return seen


def test_pending_until_for_then_firing_then_resolved(config_from: Callable[..., Config]) -> None:
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100, for: 5m}")
    seen = _run(config, [(0, 500), (4 * MIN, 500), (5 * MIN, 500), (6 * MIN, 500), (7 * MIN, 10)])
    assert seen == [
        (0, "pending"),
        (4 * MIN, "pending"),
        (5 * MIN, "firing"),
        (6 * MIN, "firing"),
        (7 * MIN, "resolved"),
    ]


def test_for_zero_fires_at_once_and_a_pending_alert_that_stops_goes_inactive(
    config_from: Callable[..., Config],
) -> None:
    assert _run(_rules(config_from, "{alert: Lag, expr: consumer_lag > 100}"), [(0, 500)]) == [(0, "firing")]
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100, for: 5m}")
    assert _run(config, [(0, 500), (MIN, 10), (2 * MIN, 10)]) == [(0, "pending"), (MIN, "inactive")]


def test_tick_fires_a_held_condition_once_for_has_passed(config_from: Callable[..., Config]) -> None:
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100, for: 2m, stale_after: 10m}")
    seen = _run(config, [(0, 500), (MIN, None), (2 * MIN, None), (3 * MIN, None)])
    assert seen == [(0, "pending"), (2 * MIN, "firing")]


def test_keep_firing_for_counts_from_the_first_false_observation(config_from: Callable[..., Config]) -> None:
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100, keep_firing_for: 10m, stale_after: 1h}")
    seen = _run(config, [(0, 500), (MIN, 10), (5 * MIN, 10), (10 * MIN, None), (11 * MIN, None)])
    assert seen == [(0, "firing"), (MIN, "firing"), (5 * MIN, "firing"), (11 * MIN, "resolved")]


def test_true_again_while_kept_firing_keeps_the_alert_and_its_start(config_from: Callable[..., Config]) -> None:
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100, keep_firing_for: 10m, stale_after: 1h}")
    states: dict[str, AlertState] = {}
    for at, value in [(0, 500), (MIN, 10), (5 * MIN, 500), (6 * MIN, 10)]:
        for s in evaluate(config.rules, platform_signal("consumer_lag", {"group": "g"}, value, at), states, at):
            states[s.fingerprint] = s
    (alert,) = states.values()
    assert alert.state == "firing" and alert.starts_at_ms == 0 and alert.keep_firing_since_ms == 6 * MIN
    assert [s.state for s in tick(config.rules, states, 16 * MIN)] == ["resolved"]


def test_a_resolved_alert_that_holds_again_starts_pending_again(config_from: Callable[..., Config]) -> None:
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100, for: 1m}")
    states: dict[str, AlertState] = {}
    for at, value in [(0, 500), (MIN, 500), (2 * MIN, 10), (3 * MIN, 500)]:
        for s in evaluate(config.rules, platform_signal("consumer_lag", {"group": "g"}, value, at), states, at):
            states[s.fingerprint] = s
    (alert,) = states.values()
    assert (alert.state, alert.active_since_ms, alert.starts_at_ms, alert.ends_at_ms) == (
        "pending",
        3 * MIN,
        None,
        None,
    )


def test_a_drift_condition_holds_between_reports_and_goes_stale(
    config_from: Callable[..., Config], report: Callable[..., dict[str, Any]]
) -> None:
    """Hourly reports: `for: 2h` fires on the tick two hours after the first true report, though only two reports
    came; when reports stop, the last one stands for stale_after, then keep_firing_for runs out."""
    config = _rules(config_from, "{alert: ScoreDrift, expr: score_drifted == true, for: 2h, keep_firing_for: 30m, "
                                 "stale_after: 3h}")  # fmt: skip
    states: dict[str, AlertState] = {}

    def apply(changed: list[AlertState]) -> list[str]:
        states.update({s.fingerprint: s for s in changed})
        return [s.state for s in changed]

    assert apply(evaluate(config.rules, drift_signals(report())[0], states, 0)) == ["pending"]
    assert apply(evaluate(config.rules, drift_signals(report())[0], states, HOUR)) == ["pending"]
    assert apply(tick(config.rules, states, 2 * HOUR - 1)) == []
    assert apply(tick(config.rules, states, 2 * HOUR)) == ["firing"]
    assert apply(tick(config.rules, states, 4 * HOUR - 1)) == []  # the 1h report still stands
    assert apply(tick(config.rules, states, 4 * HOUR)) == ["firing"]  # stale: kept firing from now
    assert next(iter(states.values())).keep_firing_since_ms == 4 * HOUR
    assert apply(tick(config.rules, states, 4 * HOUR + 29 * MIN)) == []
    assert apply(tick(config.rules, states, 4 * HOUR + 30 * MIN)) == ["resolved"]
    assert next(iter(states.values())).ends_at_ms == 4 * HOUR + 30 * MIN


def test_a_replayed_older_signal_does_not_bring_a_resolved_alert_back(
    config_from: Callable[..., Config], report: Callable[..., dict[str, Any]]
) -> None:
    config = _rules(config_from, "{alert: ScoreDrift, expr: score_drifted == true}")
    drifted, calm = drift_signals(report())[0], drift_signals(report(metrics=[]))[0]
    states: dict[str, AlertState] = {}
    for signal, at in ((drifted, HOUR), (calm, 2 * HOUR), (drifted, HOUR)):  # the first report processed twice
        states.update({s.fingerprint: s for s in evaluate(config.rules, signal, states, at)})
    assert [s.state for s in states.values()] == ["resolved"]


def test_one_alert_per_drifted_feature_with_rendered_annotations(
    config_from: Callable[..., Config], report: Callable[..., dict[str, Any]]
) -> None:
    config = config_from("""
rules:
  - alert: FeatureDrift
    expr: feature_drifted == true
    labels: {team: ml}
    annotations:
      summary: "{{ $labels.feature }} PSI {{ $values.feature_psi }}, {{ $values.drift_share | humanizePercentage }}"
      report: "{{ $report_url }} ({{ $report_id }}) {{ $values.pr_auc_missing }}"
""")
    states: dict[str, AlertState] = {}
    for signal in drift_signals(report(), report_url="http://drift/{report_id}"):
        states.update({s.fingerprint: s for s in evaluate(config.rules, signal, states, 0)})
    (alert,) = states.values()
    assert alert.labels == {"subject": "predictions", "feature_set_version": "v3", "model": "fraud",
                            "model_version": "7", "feature": "amount", "team": "ml", "severity": "warning",
                            "alertname": "FeatureDrift"}  # fmt: skip
    assert alert.annotations == {"summary": "amount PSI 0.4, 50%", "report": "http://drift/r-1 (r-1) n/a"}
    assert alert.generator_url == "http://drift/r-1" and alert.state == "firing"


def test_an_annotation_that_renders_empty_is_left_out(
    config_from: Callable[..., Config], report: Callable[..., dict[str, Any]]
) -> None:
    config = _rules(config_from, "{alert: S, expr: score_drifted == true, annotations: {report: '{{ $report_url }}', "
                                 "cmd: 'kestrel-drift report --report-id {{ $report_id }}'}}")  # fmt: skip
    (alert,) = evaluate(config.rules, drift_signals(report())[0], {}, 0)
    assert alert.annotations == {"cmd": "kestrel-drift report --report-id r-1"} and alert.generator_url == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (12_345, "12.35k"), (1_500_000, "1.5M"), (999, "999"), (0.25, "250m"), (-2_000, "-2k"),
     (0.000_001_5, "1.5u"), (1.0, "1")],
)  # fmt: skip
def test_humanize_as_prometheus(value: float, text: str) -> None:
    assert humanize(value) == text


def test_rules_only_see_signals_of_their_scope(
    config_from: Callable[..., Config], report: Callable[..., dict[str, Any]]
) -> None:
    config = _rules(config_from, "{alert: Share, expr: drift_share > 0.1}")
    changed = [s for sig in drift_signals(report()) for s in evaluate(config.rules, sig, {}, 0)]
    assert len(changed) == 1 and "feature" not in changed[0].labels


def test_a_removed_rule_resolves_its_alerts_and_state_round_trips(config_from: Callable[..., Config]) -> None:
    config = _rules(config_from, "{alert: Lag, expr: consumer_lag > 100}")
    (alert,) = evaluate(config.rules, platform_signal("consumer_lag", {"group": "g"}, 500, 0), {}, 0)
    assert AlertState.from_json(alert.to_json()) == alert
    (gone,) = tick((), {alert.fingerprint: alert}, MIN)
    assert (gone.state, gone.ends_at_ms) == ("resolved", MIN)
    assert not expired(gone, 16 * MIN) and expired(gone, 16 * MIN + 1)


@given(st.lists(st.tuples(st.integers(0, 10 * MIN), st.one_of(st.none(), st.integers(0, 200))), max_size=30))
def test_timelines_never_break_prometheus_invariants(steps: list[tuple[int, int | None]]) -> None:
    from kestrel.alerting.config import parse_config

    config = parse_config({
        "rules": [{"alert": "Lag", "expr": "consumer_lag > 100", "for": "2m", "keep_firing_for": "3m",
                   "stale_after": "5m"}],
        "route": {"receiver": "t"}, "receivers": [{"name": "t", "kind": "topic"}],
    })  # fmt: skip
    states: dict[str, AlertState] = {}
    now = 0
    for delta, value in steps:
        now += delta
        if value is None:
            changed = tick(config.rules, states, now)
        else:
            changed = evaluate(config.rules, platform_signal("consumer_lag", {"group": "g"}, value, now), states, now)
        for new in changed:
            old = states.get(new.fingerprint)
            assert (old.state if old else None, new.state) in _ALLOWED
            if new.state == "firing":
                assert new.starts_at_ms is not None and new.starts_at_ms - new.active_since_ms >= 2 * MIN
            if new.state == "resolved":
                assert new.ends_at_ms is not None and new.ends_at_ms >= (new.keep_firing_since_ms or 0) + 3 * MIN
            states[new.fingerprint] = new


_ALLOWED = {
    (None, "pending"), ("pending", "pending"), ("pending", "firing"), ("pending", "inactive"),
    ("firing", "firing"), ("firing", "resolved"), ("resolved", "pending"), ("inactive", "pending"),
}  # fmt: skip


NUMERIC = ["drift_share", "drifted_features", "score_psi", "pr_auc"]
COMPARISON = st.builds(
    Comparison, st.sampled_from(NUMERIC), st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)  # fmt: skip
CONDITION = st.recursive(
    COMPARISON, lambda inner: st.builds(Junction, st.sampled_from(["and", "or"]), st.tuples(inner, inner)), max_leaves=6
)


def _text(cond: Comparison | Junction) -> str:
    if isinstance(cond, Comparison):
        return f"{cond.field} {cond.op} {cond.value}"
    return "(" + f" {cond.op} ".join(_text(p) for p in cond.parts) + ")"


@given(CONDITION, st.fixed_dictionaries({f: st.sampled_from([0.0, 0.5, 1.0, 2.0, None]) for f in NUMERIC}))
def test_a_written_condition_parses_back_to_the_same_truth(cond: Comparison | Junction, values: dict) -> None:
    assert parse_condition(_text(cond)).holds(values) is cond.holds(values)
