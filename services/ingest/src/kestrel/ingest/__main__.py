"""Entry point: `kestrel-ingest` / `python -m kestrel.ingest`."""

from __future__ import annotations

import asyncio

from kestrel.common.logs import configure_logging
from kestrel.common.service import run_until_signalled
from kestrel.common.settings import load_settings
from kestrel.ingest.app import IngestApp
from kestrel.ingest.settings import IngestSettings


def main() -> None:
    settings = load_settings(IngestSettings)
    configure_logging("ingest", settings.log_format, settings.log_level)
    asyncio.run(run_until_signalled([IngestApp(settings)]))


if __name__ == "__main__":
    main()
