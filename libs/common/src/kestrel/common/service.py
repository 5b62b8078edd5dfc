"""Run a service's components together; stop them in reverse order on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Protocol

import structlog

log = structlog.get_logger()


class Component(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def run_until_signalled(components: Sequence[Component], stop_event: asyncio.Event | None = None) -> None:
    """Start components in order (intake last), wait for a signal, stop in reverse (intake first).

    Listing the intake (gRPC server, consumer) last means it is stopped first: intake stops,
    in-flight work drains and commits, then producers flush and connections close.
    """
    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_event.set)
    started: list[Component] = []
    try:
        for component in components:
            await component.start()
            started.append(component)
        log.info("service_ready")
        await stop_event.wait()
        log.info("service_stopping")
    finally:
        for component in reversed(started):
            try:
                await component.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("component_stop_failed", component=type(component).__name__)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
