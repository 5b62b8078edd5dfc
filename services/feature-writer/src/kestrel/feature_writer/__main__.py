"""Entry point: `kestrel-feature-writer` / `python -m kestrel.feature_writer`."""

from __future__ import annotations

import asyncio

from kestrel.common.logs import configure_logging
from kestrel.common.service import run_until_signalled
from kestrel.common.settings import load_settings
from kestrel.feature_writer.app import FeatureWriterApp
from kestrel.feature_writer.settings import FeatureWriterSettings


async def serve(settings: FeatureWriterSettings) -> bool:
    """Run until SIGTERM/SIGINT or a fatal consumer error; True when it stopped cleanly."""
    stop = asyncio.Event()
    app = FeatureWriterApp(settings, stop)
    await run_until_signalled([app], stop)
    return not app.failed


def main() -> None:
    settings = load_settings(FeatureWriterSettings)
    configure_logging("feature-writer", settings.log_format, settings.log_level)
    if not asyncio.run(serve(settings)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
