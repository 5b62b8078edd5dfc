"""A service's `main()`: --help, settings, logging, dependencies up to the start-up deadline, run until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kestrel.common.runtime.workers import is_worker, run_workers
from kestrel.common.settings import KafkaSettings, KestrelSettings, env_epilog, load_settings

if TYPE_CHECKING:
    from kestrel.common.runtime.runner import ServiceApp

S = TypeVar("S", bound=KestrelSettings)


def _kafka_only(settings: Any) -> list[Any]:
    from kestrel.common.runtime import probes

    return [probes.kafka(settings)] if isinstance(settings, KafkaSettings) else []


@dataclass(frozen=True)
class Service(Generic[S]):
    """Everything the runtime needs to run a service; its `main` is the console script's entry point.

    `components` names the wiring function (`"package.module:function"`, taking a Runtime and returning the
    ordered components) by string so that `--help` imports nothing heavy and connects nowhere."""

    name: str
    summary: str
    settings: type[S]
    components: str
    dependencies: Callable[[S], Sequence[Any]] = _kafka_only
    """Probed before anything is built; default: Kafka for Kafka services."""
    dead_letters: str | None = None
    """Whose dead-letter topic its rejects go to (`kestrel.dlq.<name>.v1`); default: its own name."""
    health_port: Callable[[S], int | None] = field(default=lambda s: getattr(s, "health_port", None))
    """HTTP /healthz and /readyz port (0: off); gRPC services answer the gRPC health service besides."""

    def main(self, argv: Sequence[str] | None = None) -> None:
        self.parser().parse_args(argv)
        settings = load_settings(self.settings)
        from kestrel.common.logs import configure_logging

        configure_logging(self.name, settings.log_format, settings.log_level)
        workers = getattr(settings, "workers", 1)
        if workers > 1 and not is_worker():
            prefix = str(self.settings.model_config.get("env_prefix", ""))
            raise SystemExit(run_workers(self.name, workers, prefix, settings.metrics_port))
        raise SystemExit(asyncio.run(self.run(settings)))

    def parser(self) -> argparse.ArgumentParser:
        return argparse.ArgumentParser(
            prog=f"kestrel-{self.name}",
            description=self.summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=env_epilog(self.settings),
        )

    async def run(self, settings: S, stop: asyncio.Event | None = None) -> int:
        """Exit status: 0 after a requested stop, 1 when a dependency never came up or the service failed."""
        from kestrel.common.runtime.runner import run_service

        return await run_service(self, settings, stop)

    def app(self, settings: S, stop: asyncio.Event | None = None) -> ServiceApp:
        """The assembled service, to start and stop in-process (tests, benchmarks, embedding)."""
        from kestrel.common.runtime.runner import ServiceApp

        return ServiceApp(self, settings, stop)

    def wiring(self) -> Callable[..., list[Any]]:
        module, _, function = self.components.partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]
