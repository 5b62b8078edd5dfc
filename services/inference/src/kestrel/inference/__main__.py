"""Entry point: `kestrel-inference` / `python -m kestrel.inference`."""

from __future__ import annotations

import asyncio

from kestrel.common.logs import configure_logging
from kestrel.common.service import run_until_signalled
from kestrel.common.settings import load_settings
from kestrel.inference.app import InferenceApp
from kestrel.inference.settings import InferenceSettings


async def serve(settings: InferenceSettings) -> bool:
    """Run until SIGTERM/SIGINT or a fatal scorer error; True when it stopped cleanly."""
    stop = asyncio.Event()
    app = InferenceApp(settings, stop)
    await run_until_signalled([app], stop)
    return not app.failed


def main() -> None:
    settings = load_settings(InferenceSettings)
    configure_logging("inference", settings.log_format, settings.log_level)
    if not asyncio.run(serve(settings)):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
