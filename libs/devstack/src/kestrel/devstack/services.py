"""The services `kestrel-stack up` runs as processes, and the environment each one reads (pure: no I/O)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from pydantic_settings import BaseSettings

from kestrel.common.settings import GLOBAL_PREFIX

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Service:
    """One service: its console script, its settings class (for variable names and ports) and how to run it."""

    name: str
    script: str
    settings: str
    """"module:Class" of the settings the script reads: its env prefix and `*_port` fields come from here."""
    ready_port: str
    """Settings field of the port that accepts connections once the process serves."""
    env: Mapping[str, str] = field(default_factory=dict)
    consumer: bool = False
    """Replicas share one consumer group, so `--replicas NAME=N` spreads the partitions over N processes."""

    @property
    def settings_class(self) -> type[BaseSettings]:
        return _import(self.settings)

    @property
    def prefix(self) -> str:
        return str(self.settings_class.model_config.get("env_prefix", GLOBAL_PREFIX))

    @property
    def port_fields(self) -> tuple[str, ...]:
        """Every port the service may listen on: each replica gets its own, so replicas never collide."""
        return tuple(name for name in self.settings_class.model_fields if name.endswith("_port"))

    def reads(self, name: str) -> bool:
        return name in self.settings_class.model_fields


# Start order: producers before consumers, so the first events find their readers.
SERVICES = (
    Service("ingest", "kestrel-ingest", "kestrel.ingest.settings:IngestSettings", "grpc_port"),
    Service(
        "features", "kestrel-features", "kestrel.features.settings:FeaturesSettings", "metrics_port", consumer=True
    ),
    Service(
        "feature-writer",
        "kestrel-feature-writer",
        "kestrel.feature_writer.settings:FeatureWriterSettings",
        "health_port",
        consumer=True,
    ),
    Service("inference", "kestrel-inference", "kestrel.inference.settings:InferenceSettings", "grpc_port"),
    Service(
        "inference-scorer",
        "kestrel-inference-scorer",
        "kestrel.inference.settings:InferenceSettings",
        "health_port",
        consumer=True,
    ),
    Service(
        "prediction-logger",
        "kestrel-prediction-logger",
        "kestrel.prediction_logger.settings:PredictionLoggerSettings",
        "health_port",
        consumer=True,
    ),
    # One replica: its windows close on the watermark over every partition of kestrel.predictions.v1.
    Service(
        "drift-monitor", "kestrel-drift-monitor", "kestrel.drift_monitor.settings:DriftMonitorSettings", "health_port"
    ),
    Service("alerting", "kestrel-alerting", "kestrel.alerting.settings:AlertingSettings", "health_port", consumer=True),
    # Needs Triton (it loads challengers): left out of a stack started without it.
    Service(
        "retrain-trigger",
        "kestrel-retrain-trigger",
        "kestrel.retrain_trigger.settings:RetrainTriggerSettings",
        "health_port",
        consumer=True,
    ),
)

CLIENTS = ("kestrel.simulator.settings:SimulatorSettings",)
"""Tools that read stack.env too (`kestrel-sim`), so the variables they need are written as well."""


def by_name(name: str, services: Iterable[Service] = SERVICES) -> Service:
    for service in services:
        if service.name == name:
            return service
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in services)}")


def runnable(
    addresses: Mapping[str, str], all_fields: Iterable[str], services: Iterable[Service] = SERVICES
) -> list[Service]:
    """Services whose every stack address is there: without tritonserver, inference does not start."""
    missing = set(all_fields) - set(addresses)
    return [s for s in services if not any(s.reads(name) for name in missing)]


def stack_env(addresses: Mapping[str, str], services: Iterable[Service] = SERVICES) -> dict[str, str]:
    """stack.env: KESTREL_<FIELD> (the shared fallback every service reads) for each address some service or
    client has a settings field for; an address nobody reads (yet) is left out."""
    readers = [s.settings_class for s in services] + [_import(c) for c in CLIENTS]
    fields = set().union(*(cls.model_fields for cls in readers))
    return {f"{GLOBAL_PREFIX}{name.upper()}": value for name, value in addresses.items() if name in fields}


def replica_env(service: Service, ports: Mapping[str, int]) -> dict[str, str]:
    """What one replica gets on top of stack.env: its own ports, loopback-only gRPC, its fixed variables."""
    env = {f"{service.prefix}{name.upper()}": str(port) for name, port in ports.items()}
    if service.reads("grpc_host"):
        env[f"{service.prefix}GRPC_HOST"] = HOST
    return env | dict(service.env)


def parse_replicas(specs: Iterable[str], services: Iterable[Service] = SERVICES) -> dict[str, int]:
    """`features=2,feature-writer=3` (repeatable) -> {"features": 2, ...}; only consumer services scale."""
    services = tuple(services)
    counts: dict[str, int] = {}
    for item in (part for spec in specs for part in spec.split(",") if part):
        name, sep, count = item.partition("=")
        service = by_name(name.strip(), services)
        if not sep or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"--replicas {item!r}: expected NAME=N with N >= 1")
        if not service.consumer and int(count) != 1:
            raise ValueError(
                f"{service.name} is not a consumer service; only these scale: "
                f"{', '.join(s.name for s in services if s.consumer)}"
            )
        counts[service.name] = int(count)
    return counts


@cache
def _import(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return cls
