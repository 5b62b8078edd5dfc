"""The alerting service as the runtime runs it (light to import: `--help` loads no client)."""

from kestrel.alerting.settings import AlertingSettings
from kestrel.common.runtime import Service

SERVICE = Service(
    name="alerting",
    summary="Turns drift reports and platform signals into Alertmanager-style alerts, grouped, routed and "
    "notified exactly once (faust-streaming).",
    settings=AlertingSettings,
    components="kestrel.alerting.wiring:components",
)
