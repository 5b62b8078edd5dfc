"""Runs a Service: dependencies, then its components in order until SIGTERM/SIGINT or a fatal error."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from kestrel.common.errors import KestrelError
from kestrel.common.runtime.app import Runtime, Watched
from kestrel.common.runtime.lifecycle import Component, run_until_signalled
from kestrel.common.runtime.startup import StartupError, wait_for_dependencies

if TYPE_CHECKING:
    from kestrel.common.runtime.service import Service

log = structlog.get_logger()

T = TypeVar("T")


class ServiceApp:
    """A service's assembled components as one start/stop unit: what `main()` runs, and what tests and
    benchmarks start in-process (`SERVICE.app(settings)`)."""

    def __init__(self, service: Service[Any], settings: Any, stop: asyncio.Event | None = None) -> None:
        self.runtime = Runtime(service.name, settings, stop, service.dead_letters)
        self.components: list[Component] = self.runtime.assemble(
            service.wiring()(self.runtime), service.health_port(settings)
        )
        self._started: list[Component] = []

    async def start(self) -> None:
        """Start in order; if one fails, stop those already started (reverse order) and raise."""
        try:
            for component in self.components:
                await component.start()
                self._started.append(component)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop in reverse order: intake first, then what it feeds, then connections."""
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("component_stop_failed", component=type(component).__name__)

    @property
    def failed(self) -> bool:
        return self.runtime.failed

    def part(self, kind: type[T]) -> T:
        """The one component of this type (tests reach into a running service this way); a watched loop counts
        as its loop's type too."""
        found = [c for c in self.components if isinstance(c, kind)]
        found += [c.loop for c in self.components if isinstance(c, Watched) and isinstance(c.loop, kind)]
        if len(found) != 1:
            raise LookupError(f"{len(found)} components of type {kind.__name__}")
        return found[0]


async def run_service(service: Service[Any], settings: Any, stop: asyncio.Event | None = None) -> int:
    try:
        await wait_for_dependencies(service.dependencies(settings), settings.startup_deadline_s)
    except StartupError as exc:
        return _fail(service.name, str(exc))
    try:
        app = ServiceApp(service, settings, stop)
        await run_until_signalled([app], app.runtime.stop)
    except (KestrelError, OSError) as exc:
        log.debug("service_start_failed", exc_info=True)
        return _fail(service.name, f"{type(exc).__name__}: {exc}")
    return 1 if app.failed else 0


def _fail(name: str, message: str) -> int:
    """The one line an operator reads when the process exits (the warnings before it are in the log)."""
    from kestrel.common.logs import redact

    print(f"kestrel-{name}: {redact(message)}", file=sys.stderr)
    return 1
