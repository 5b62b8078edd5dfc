"""Entry point: `kestrel-ingest` / `python -m kestrel.ingest`."""

from __future__ import annotations

from kestrel.common.service import serve
from kestrel.ingest.app import IngestApp
from kestrel.ingest.settings import IngestSettings


def main() -> None:
    """Exits 1 when the producer failed for good, so the supervisor restarts the process."""
    serve("ingest", IngestSettings, IngestApp)


if __name__ == "__main__":
    main()
