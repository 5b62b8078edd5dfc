"""What the runtime hands a service's wiring: settings, topics, the stop event, loop watching and health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import structlog

from kestrel.common.health import HealthEndpoint, server_tls
from kestrel.common.metrics import MetricsEndpoint
from kestrel.common.runtime.bindings import Topics
from kestrel.common.runtime.lifecycle import Component, LoopWatch
from kestrel.common.settings import KafkaSettings, KestrelSettings

log = structlog.get_logger()

S = TypeVar("S", bound=KestrelSettings)


class Loop(Component, Protocol):
    """A component that runs a work loop until stopped; `wait()` returns when it ends, raising if it failed."""

    async def wait(self) -> None: ...


class Watched:
    """Starts a loop component and watches it: if the loop dies, the service fails and exits."""

    def __init__(self, loop: Loop, watch: LoopWatch) -> None:
        self.loop = loop
        self.watch = watch

    async def start(self) -> None:
        await self.loop.start()
        self.watch.start(self.loop)

    async def stop(self) -> None:
        await self.loop.stop()  # the watcher then sees the loop end normally
        await self.watch.wait()


class Closing:
    """Closes a client's connections (anything with `aclose()`) when the service stops."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()


class Runtime(Generic[S]):
    """One per process. A service's `components(rt)` builds its parts from `rt.settings` and `rt.topics`,
    wraps its work loops with `rt.watch(...)`, states readiness with `rt.ready_when(...)`, and reports a fatal
    error with `rt.fail(...)`; the runtime adds metrics and health and runs the list in order."""

    def __init__(
        self, name: str, settings: S, stop: asyncio.Event | None = None, dead_letters: str | None = None
    ) -> None:
        self.name = name
        self.dead_letter_service = dead_letters or name
        """Its rejects go to `kestrel.dlq.<dead_letter_service>.v1`."""
        self.settings = settings
        self.stop = stop or asyncio.Event()
        self.topics = Topics(settings) if isinstance(settings, KafkaSettings) else None
        self.fatal: str | None = None
        self._watches: list[LoopWatch] = []
        self._ready: list[Callable[[], bool]] = []
        self._components: list[Any] = []
        self._background: asyncio.Future[None] | None = None
        self._started = False

    def watch(self, loop: Loop, name: str | None = None) -> Watched:
        return Watched(loop, self.loop_watch(name or self.name))

    def loop_watch(self, name: str) -> LoopWatch:
        """A watch whose loop, if it dies, fails the service: out of rotation at once, then the process exits."""
        watch = LoopWatch(name, self.stop, on_fail=self._out_of_rotation)
        self._watches.append(watch)
        return watch

    def ready_when(self, check: Callable[[], bool]) -> None:
        self._ready.append(check)

    def fail(self, reason: str) -> None:
        """A fatal error: not ready from now on, and the process exits (non-zero) so its supervisor restarts it."""
        if self.fatal is None:
            log.error("service_fatal", reason=reason)
            self.fatal = reason
            self._background = asyncio.ensure_future(self._out_of_rotation())
        self.stop.set()

    async def _out_of_rotation(self) -> None:
        """/readyz already says 503 once failed; components with their own health (gRPC) say NOT_SERVING now,
        before the orderly stop, so no new calls are routed to a process that is about to exit."""
        for component in self._components:
            if hasattr(component, "out_of_rotation"):
                await component.out_of_rotation()

    @property
    def failed(self) -> bool:
        return self.fatal is not None or any(w.failed for w in self._watches)

    def live(self) -> bool:
        """Not failed, and every watched loop still runs (while starting, the loops are not running yet)."""
        return not self.failed and (not self._started or all(w.alive for w in self._watches))

    def ready(self) -> bool:
        return self._started and self.live() and all(check() for check in self._ready)

    def assemble(self, components: list[Any], health_port: int | None) -> list[Any]:
        """Health first (it answers /healthz while a slow start, e.g. a state restore, runs; /readyz says 503 until
        everything started), then topics (schemas fetched before anyone produces), metrics, the service's own
        components in its order, and a marker that flips readiness once they all started."""
        head: list[Any] = []
        if health_port is not None:
            s = self.settings  # a gRPC service's certificate serves its health endpoint too (HTTPS probes)
            tls = server_tls(getattr(s, "tls_certfile", None), getattr(s, "tls_keyfile", None))
            head.append(HealthEndpoint(health_port, {"/healthz": self.live, "/readyz": self.ready}, tls=tls))
        if self.topics is not None:
            head.append(self.topics)
        head.append(MetricsEndpoint(self.settings.metrics_port))
        self._components = [*head, *components, _Started(self)]
        return self._components


class _Started:
    def __init__(self, runtime: Runtime[Any]) -> None:
        self._runtime = runtime

    async def start(self) -> None:
        self._runtime._started = True

    async def stop(self) -> None:
        self._runtime._started = False
