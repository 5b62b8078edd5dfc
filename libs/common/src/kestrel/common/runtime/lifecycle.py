"""Components start in order and stop in reverse on SIGTERM/SIGINT; a watched loop that dies stops the service."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

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
            except Exception:
                log.exception("component_stop_failed", component=type(component).__name__)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


class LoopWatch:
    """Watches a consumer loop (anything with `async wait()`): `alive` while it runs; if it dies with an error,
    the error is logged, `failed` is set and `stop_event` too, so the process exits and its supervisor
    restarts it (a half-dead consumer that still answers health checks would stall its partitions)."""

    def __init__(
        self, name: str, stop_event: asyncio.Event | None = None, on_fail: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.name = name
        self.failed = False
        self._stop_event = stop_event
        self._on_fail = on_fail
        """Awaited first when the loop dies: e.g. take the service out of rotation before it stops."""
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: Any) -> None:
        self._task = asyncio.create_task(self._watch(loop), name=f"{self.name}-watch")

    async def wait(self) -> None:
        """After the loop was asked to stop: returns once the watcher saw it end."""
        if self._task is not None:
            await self._task

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _watch(self, loop: Any) -> None:
        try:
            await loop.wait()
        except Exception:
            log.exception("loop_failed", loop=self.name)
            self.failed = True
            if self._on_fail is not None:
                await self._on_fail()
            if self._stop_event is not None:
                self._stop_event.set()
