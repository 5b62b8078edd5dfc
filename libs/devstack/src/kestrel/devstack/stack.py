"""The embedded stack: Kafka, Redis, PostgreSQL and tritonserver as local processes, with topics and tables."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from kestrel.common.topics import load_catalogue
from kestrel.devstack import migrations
from kestrel.devstack.kafka import KafkaBroker
from kestrel.devstack.paths import default_state_dir, model_repository
from kestrel.devstack.postgres import PostgresServer
from kestrel.devstack.process import ComponentError, ServerProcess, start_time
from kestrel.devstack.record import StackRecord, find_running, load_ports, remove_record, save_ports, write_env_file
from kestrel.devstack.redis_server import RedisServer
from kestrel.devstack.services import stack_env
from kestrel.devstack.topics import apply_topics
from kestrel.devstack.triton import TritonServer

log = structlog.get_logger()

ADDRESSES = (
    "kafka_bootstrap",
    "redis_url",
    "postgres_dsn",
    "schema_registry_store",
    "triton_url",
    "triton_http_url",
)
"""What the stack can provide, named by the settings field that reads it (stack.env writes KESTREL_<FIELD>)."""


class Stack:
    """Start with `await stack.start()`; `stack.env` then holds what services read, `endpoints` everything."""

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        with_triton: bool = True,
        model_repo: Path | None = None,
        triton_models: Sequence[str] = (),
        ports: Mapping[str, int] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir or default_state_dir()).absolute()
        self.model_repo = Path(model_repo or self.state_dir / "models").absolute()
        """What tritonserver serves and the drift monitor and retrain-trigger read; by default the stack's own copy
        of the checked-in models, so the retrain-trigger's new versions (and Triton's __pycache__) stay out of the
        checkout and live as long as the registry that names them."""
        self._copy_models = model_repo is None
        ports = load_ports(self.state_dir) if ports is None else ports  # busy ones are replaced by free ones
        self.kafka = KafkaBroker(self.state_dir, ports.get("kafka"), ports.get("kafka_controller"))
        self.redis = RedisServer(self.state_dir, ports.get("redis"))
        self.postgres = PostgresServer(self.state_dir, ports.get("postgres"))
        self.triton = _triton(self.state_dir, self.model_repo, triton_models, ports) if with_triton else None
        self.service_addresses: dict[str, str] = {}
        """Addresses of the stack's own services that clients read (ingest_addr for kestrel-sim)."""
        self._started: list[ServerProcess] = []
        self._recorded = False  # only the Stack that wrote stack.json may remove it

    @property
    def components(self) -> list[ServerProcess]:
        return [c for c in (self.kafka, self.redis, self.postgres, self.triton) if c is not None]

    @property
    def addresses(self) -> dict[str, str]:
        addresses = {
            "kafka_bootstrap": self.kafka.bootstrap,
            "redis_url": self.redis.url,
            "postgres_dsn": self.postgres.dsn,
            # One shared file registry: every service learns the schema versions the others wrote.
            "schema_registry_store": str(self.state_dir / "schema-registry.json"),
            "model_repository": str(self.model_repo),  # a folder, not a server: every stack has one
        }
        if self.triton is not None:
            addresses["triton_url"] = self.triton.grpc_url
            addresses["triton_http_url"] = self.triton.http_url  # model control: the retrain-trigger's loads
        return addresses | self.service_addresses

    @property
    def env(self) -> dict[str, str]:
        """stack.env: exactly the variables some service reads."""
        return stack_env(self.addresses)

    @property
    def endpoints(self) -> dict[str, str]:
        """Every address as KESTREL_<FIELD> (Triton's HTTP URL among them): for `status`, tools and test fixtures."""
        return {f"KESTREL_{name.upper()}": value for name, value in self.addresses.items()}

    @property
    def ports(self) -> dict[str, int]:
        ports = {"kafka": self.kafka.port, "kafka_controller": self.kafka.controller_port}
        ports |= {"redis": self.redis.port, "postgres": self.postgres.port}
        if self.triton is not None:
            ports |= {"triton_grpc": self.triton.grpc_port, "triton_http": self.triton.http_port}
            ports["triton_metrics"] = self.triton.metrics_port
        return ports

    async def start(self) -> None:
        """Start every component at once (Kafka is the slowest), then create topics and tables."""
        if running := find_running(self.state_dir):
            where = f"{self.state_dir} (started by pid {running.owner_pid})"
            raise ComponentError("stack", f"already running from {where}; run `kestrel-stack down` first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._copy_models:
            copy_new_models(model_repository(), self.model_repo)
        try:
            results = await asyncio.gather(*(self._start(c) for c in self.components), return_exceptions=True)
            if failures := [r for r in results if isinstance(r, BaseException)]:
                raise failures[0]
            await self._provision()
        except BaseException:
            await self.stop()
            raise
        save_ports(self.state_dir, self.ports)
        self.announce({})
        log.info("stack ready", state_dir=str(self.state_dir), **self.endpoints)

    def announce(self, service_addresses: dict[str, str]) -> None:
        """(Re)write stack.env and stack.json, e.g. once the services listen."""
        self.service_addresses |= service_addresses
        write_env_file(self.state_dir, self.env)
        self._record()

    async def stop(self) -> None:
        """Triton first (it may still be answering), then the stores and the broker together."""
        if self.triton is not None and self.triton in self._started:
            await self.triton.stop()
        await asyncio.gather(*(c.stop() for c in self._started if c is not self.triton))
        self._started.clear()
        if self._recorded:
            remove_record(self.state_dir)
            self._recorded = False

    async def _start(self, component: ServerProcess) -> None:
        self._started.append(component)  # stop() covers a component that fails half-way
        await component.start()
        self._record()  # `kestrel-stack down` can stop it even if we are killed before the rest is up

    async def _provision(self) -> None:
        changes = await apply_topics(self.kafka.bootstrap, load_catalogue())
        applied = await migrations.apply(self.postgres.dsn)
        log.info("stack provisioned", topics_created=len(changes.created), migrations=applied)

    def _record(self) -> None:
        StackRecord.of(self.endpoints, self.ports, _records(self._started)).write(self.state_dir)
        self._recorded = True


def _records(components: Sequence[ServerProcess]) -> dict[str, dict[str, Any]]:
    records = {}
    for component in components:
        if component.pid is None:
            continue
        record = component.record()
        if shm_prefix := getattr(component, "shm_prefix", None):
            record["shm_glob"] = f"/dev/shm/{shm_prefix}*"  # the Python backend's leftovers after a kill
        record["started"] = record.get("started") or start_time(component.pid)
        records[component.name] = record
    return records


def copy_new_models(source: Path, target: Path) -> list[str]:
    """Copies each model of `source` that `target` lacks (a model already there keeps the versions and version
    pins the retrain-trigger gave it); returns the models copied."""
    copied = []
    for model in sorted(p for p in source.iterdir() if p.is_dir() and not (target / p.name).exists()):
        shutil.copytree(model, target / model.name, ignore=shutil.ignore_patterns("__pycache__"))
        copied.append(model.name)
    return copied


def _triton(state_dir: Path, model_repo: Path, models: Sequence[str], ports: Mapping[str, int]) -> TritonServer:
    return TritonServer(
        state_dir,
        model_repo,
        grpc_port=ports.get("triton_grpc"),
        http_port=ports.get("triton_http"),
        metrics_port=ports.get("triton_metrics"),
        load_models=tuple(models),
    )
