"""The service runtime: how every Kestrel service is wired, started, watched, health-checked and stopped.

Only the light entry points are imported here, so a console script's `--help` stays instant; the parts a
running service needs live in runtime.app, runtime.bindings and runtime.consumer."""

from kestrel.common.runtime.service import Service
from kestrel.common.runtime.startup import Dependency, StartupError

__all__ = ["Dependency", "Service", "StartupError"]
