"""The default infra/alerting/rules.yaml end to end, pure: a drift report -> alerts -> groups -> notifications."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kestrel.alerting.config import Config, load_config
from kestrel.alerting.payload import webhook_payload
from kestrel.alerting.routing import GroupState, Notification, RouteMatch, flush_due, inhibited, routes_for
from kestrel.alerting.rules import AlertState, drift_signals, evaluate, platform_signal, tick

REPO = Path(__file__).resolve().parents[3]
SEC, MIN = 1000, 60_000


def _notifications(config: Config, alerts: list[AlertState], now: int) -> dict[str, Notification]:
    """Routes the firing alerts (minus inhibited ones) into groups created at 0, and flushes each at `now`."""
    firing = [a.labels for a in alerts if a.state == "firing"]
    groups: dict[str, tuple[RouteMatch, list[AlertState]]] = {}
    for alert in alerts:
        if alert.state != "firing" or inhibited(alert.labels, firing, config.inhibit_rules):
            continue
        for match in routes_for(config.route, alert.labels):
            groups.setdefault(match.group_key.uid(), (match, []))[1].append(alert)
    out = {}
    for uid, (match, members) in groups.items():
        key = match.group_key
        state = GroupState(key.key(), key.receiver, 0, None, {}, group_labels=dict(key.labels))
        note = flush_due(state, match.opts, members, now)
        if note:
            out[uid] = note
    return out


def test_drifted_features_reach_each_receiver_in_one_notification(report: Callable[..., dict[str, Any]]) -> None:
    config = load_config(REPO / "infra/alerting/rules.yaml")
    metrics = [{"name": f, "kind": "numeric", "psi": 0.3 + i / 10, "drifted": f != "day", "p_corrected": 0.001}
               for i, f in enumerate(("amount", "hour", "merchant", "day"))]  # fmt: skip
    states: dict[str, AlertState] = {}
    for signal in drift_signals(report(metrics=metrics), config.report_url):
        states.update({s.fingerprint: s for s in evaluate(config.rules, signal, states, 0)})
    firing = sorted(a.rule for a in states.values() if a.state == "firing")
    assert firing == ["FeatureDrift"] * 3 + ["PerformanceDegraded"]  # ScoreDrift waits for its `for`

    notes = _notifications(config, list(states.values()), 30 * SEC)
    by_receiver = sorted((n.receiver, n.group_labels["alertname"], len(n.alerts)) for n in notes.values())
    assert by_receiver == [
        ("alerts-topic", "FeatureDrift", 3), ("alerts-topic", "PerformanceDegraded", 1),
        ("oncall-webhook", "PerformanceDegraded", 1),
    ]  # fmt: skip
    feature_note = next(n for n in notes.values() if n.group_labels["alertname"] == "FeatureDrift")
    body = webhook_payload(feature_note, config.external_url)
    assert [a["labels"]["feature"] for a in body["alerts"]] == ["amount", "hour", "merchant"]
    assert body["commonAnnotations"] == {"report_command": "kestrel-drift report --from-postgres --report-id r-1"}
    assert body["groupKey"] == '{}/{}:{alertname="FeatureDrift", model="fraud", model_version="7"}'


def test_a_measured_drop_inhibits_the_estimate_that_announced_it(report: Callable[..., dict[str, Any]]) -> None:
    config = load_config(REPO / "infra/alerting/rules.yaml")
    estimate = report(performance={"labelled": 0, "positives": 0, "estimated_precision": 0.4,
                                   "precision_band_low": 0.6, "degraded": True, "basis": "estimated"})  # fmt: skip
    states: dict[str, AlertState] = {}
    for at in (0, 60 * MIN):
        for signal in drift_signals(estimate):
            states.update({s.fingerprint: s for s in evaluate(config.rules, signal, states, at)})
    (drop,) = [a for a in states.values() if a.rule == "PerformanceEstimateDrop"]
    assert drop.state == "firing"
    measured = next(s for s in drift_signals(report()) if s["scope"] == "model")
    states.update({s.fingerprint: s for s in evaluate(config.rules, measured, states, 61 * MIN)})
    firing = [a.labels for a in states.values() if a.state == "firing"]
    assert inhibited(drop.labels, firing, config.inhibit_rules)


def test_consumer_lag_fires_after_five_minutes_and_pages(report: Callable[..., dict[str, Any]]) -> None:
    config = load_config(REPO / "infra/alerting/rules.yaml")
    states: dict[str, AlertState] = {}
    for at in range(0, 6 * MIN, 30 * SEC):
        signal = platform_signal("consumer_lag", {"group": "kestrel-features"}, 25_000, at)
        states.update({s.fingerprint: s for s in evaluate(config.rules, signal, states, at)})
        states.update({s.fingerprint: s for s in tick(config.rules, states, at)})
    (lag,) = states.values()
    assert (lag.state, lag.starts_at_ms) == ("firing", 5 * MIN)
    assert lag.annotations["summary"] == "Consumer group kestrel-features is 25k messages behind"
    assert [m.receiver for m in routes_for(config.route, lag.labels)] == ["oncall-webhook", "alerts-topic"]


def test_an_events_report_fires_feature_drift_for_its_column_and_nothing_on_score_or_performance(
    report: Callable[..., dict[str, Any]],
) -> None:
    """The drift monitor's events subject (raw event columns, no score, no performance) under the default rules."""
    config = load_config(REPO / "infra/alerting/rules.yaml")
    metrics = [
        {"name": "channel", "kind": "categorical", "psi": 0.2, "drifted": True, "p_corrected": 0.0},
        {"name": "country", "kind": "categorical", "psi": 0.001, "drifted": False, "p_corrected": 0.3},
    ]
    events = report(subject="events", feature_set_version="kestrel.v1.Event", metrics=metrics, performance=None)
    states: dict[str, AlertState] = {}
    for signal in drift_signals(events, config.report_url):
        states.update({s.fingerprint: s for s in evaluate(config.rules, signal, states, 0)})
    [alert] = [a for a in states.values() if a.state == "firing"]
    assert alert.rule == "FeatureDrift"
    assert (alert.labels["subject"], alert.labels["feature"], alert.labels["model"]) == ("events", "channel", "fraud")
