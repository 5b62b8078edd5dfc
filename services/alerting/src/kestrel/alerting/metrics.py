"""The alerting service's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FIRING = Gauge("kestrel_alerting_alerts_firing", "Alerts firing on the partitions this replica owns")
NOTIFICATIONS = Counter(
    "kestrel_alerting_notifications_total",
    "Notifications by receiver and outcome (sent, failed, fallback)",
    ["receiver", "outcome"],
)
REPLAYED = Counter(
    "kestrel_alerting_notifications_replayed_total", "Logged but unsent notifications sent after a restart"
)
EVALUATION_SECONDS = Histogram(
    "kestrel_alerting_evaluation_seconds",
    "Rule evaluation of one signal or tick",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
SIGNALS = Counter("kestrel_alerting_signals_total", "Signals evaluated by source", ["source"])
REJECTED = Counter("kestrel_alerting_rejected_total", "Drift reports that could not be decoded (dead-lettered)")
