"""Entry point: `kestrel-features` / `python -m kestrel.features`."""

from __future__ import annotations

import asyncio

from kestrel.common.logs import configure_logging
from kestrel.common.service import run_until_signalled
from kestrel.common.settings import load_settings
from kestrel.features.app import FeaturesApp
from kestrel.features.settings import FeaturesSettings


def main() -> None:
    settings = load_settings(FeaturesSettings)
    configure_logging("features", settings.log_format, settings.log_level)
    asyncio.run(run_until_signalled([FeaturesApp(settings)]))


if __name__ == "__main__":
    main()
