"""The drift monitor as the runtime runs it (light to import: `--help` loads no client)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kestrel.common.runtime import Service
from kestrel.drift_monitor.settings import DriftMonitorSettings


def dependencies(settings: DriftMonitorSettings) -> Sequence[Any]:
    from kestrel.common.runtime import probes
    from kestrel.prediction_logger.service import postgres

    return [probes.kafka(settings), postgres(settings)]  # type: ignore[arg-type]  # reads postgres_* only


SERVICE = Service(
    name="drift-monitor",
    summary="Per model version and event-time window, feature and score drift against the version's reference, "
    "from the prediction log; DriftReports to kestrel.drift-reports.v1 and PostgreSQL.",
    settings=DriftMonitorSettings,
    components="kestrel.drift_monitor.app:components",
    dependencies=dependencies,
)
