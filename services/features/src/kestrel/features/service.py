"""The features service as the runtime runs it (light to import: `--help` loads no client)."""

from kestrel.common.runtime import Service
from kestrel.features.settings import FeaturesSettings

SERVICE = Service(
    name="features",
    summary="Windowed per-entity features from kestrel.events.v1 to kestrel.features.v1, state restored from a "
    "compacted changelog.",
    settings=FeaturesSettings,
    components="kestrel.features.app:components",
)
