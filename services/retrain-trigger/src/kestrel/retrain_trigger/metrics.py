"""The retrain-trigger's Prometheus metrics."""

from prometheus_client import Counter

DECISIONS = Counter(
    "kestrel_retrain_decisions_total", "Alerts and requests the policy judged, by decision", ["model", "decision"]
)
LIFECYCLE = Counter("kestrel_retrain_lifecycle_records_total", "Lifecycle records published, by stage", ["stage"])
WORK_FAILED = Counter(
    "kestrel_retrain_work_errors_total", "Background work that raised (retried at a later mark)", ["work"]
)
