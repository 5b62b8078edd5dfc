"""Ingest as the runtime runs it (light to import: `--help` loads no client)."""

from kestrel.common.runtime import Service
from kestrel.ingest.settings import IngestSettings

SERVICE = Service(
    name="ingest",
    summary="gRPC API that validates events and produces them to kestrel.events.v1 (rejects: gRPC "
    "INVALID_ARGUMENT with the field, and a dead letter).",
    settings=IngestSettings,
    components="kestrel.ingest.app:components",
)
