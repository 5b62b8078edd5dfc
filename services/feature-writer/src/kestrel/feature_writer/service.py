"""The feature-writer as the runtime runs it (light to import: `--help` loads no client)."""

from kestrel.common.runtime import Service
from kestrel.feature_writer.settings import FeatureWriterSettings

SERVICE = Service(
    name="feature-writer",
    summary="Writes feature vectors from kestrel.features.v1 into the Redis online store, newest event time wins.",
    settings=FeatureWriterSettings,
    components="kestrel.feature_writer.app:components",
)
