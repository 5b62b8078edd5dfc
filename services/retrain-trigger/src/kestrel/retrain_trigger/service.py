"""The retrain-trigger service as the runtime runs it (light to import: `--help` loads no client)."""

from kestrel.common.runtime import Service
from kestrel.retrain_trigger.settings import RetrainTriggerSettings

SERVICE = Service(
    name="retrain-trigger",
    summary="Retrains a model on alerts and requests, gates it, loads it into Triton beside the champion, "
    "shadow-scores it and promotes or rejects it (faust-streaming).",
    settings=RetrainTriggerSettings,
    components="kestrel.retrain_trigger.wiring:components",
)
