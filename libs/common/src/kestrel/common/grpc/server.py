"""grpc.aio server bootstrap: servicers, health, reflection, interceptors, TLS/mTLS, graceful stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import BaseModel, SecretStr

from kestrel.common.grpc.interceptors import ErrorMappingInterceptor, TokenAuthInterceptor

log = structlog.get_logger()


class GrpcServerSettings(BaseModel):
    """Fields a service's settings expose for its gRPC front."""

    host: str = "0.0.0.0"
    port: int = 50051
    max_concurrent_rpcs: int = 1024
    """Beyond this, new RPCs get RESOURCE_EXHAUSTED instead of queueing without bound."""
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    tls_client_cafile: Path | None = None
    """Set to require client certificates signed by this CA (mutual TLS)."""
    auth_tokens: list[SecretStr] = []
    grace_s: float = 5.0
    reuse_port: bool = False
    """SO_REUSEPORT: several worker processes share the port."""


@dataclass
class ServiceBinding:
    """A servicer, the generated `add_XServicer_to_server` function and the service's descriptor."""

    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    descriptor: Any
    """The proto ServiceDescriptor (e.g. ingest_pb2.DESCRIPTOR.services_by_name['IngestService'])."""


@dataclass
class GrpcServer:
    settings: GrpcServerSettings
    bindings: Sequence[ServiceBinding]
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = field(default_factory=tuple)
    port: int = 0
    """The bound port (useful when settings.port is 0)."""

    def __post_init__(self) -> None:
        self._server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()

    def _interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if self.settings.auth_tokens:
            interceptors.append(TokenAuthInterceptor([t.get_secret_value() for t in self.settings.auth_tokens]))
        return [*interceptors, *self.extra_interceptors, ErrorMappingInterceptor()]

    def _credentials(self) -> grpc.ServerCredentials | None:
        s = self.settings
        if not s.tls_certfile:
            return None
        if not s.tls_keyfile:
            raise ValueError("tls_keyfile is required with tls_certfile")
        root = s.tls_client_cafile.read_bytes() if s.tls_client_cafile else None
        return grpc.ssl_server_credentials(
            [(s.tls_keyfile.read_bytes(), s.tls_certfile.read_bytes())],
            root_certificates=root,
            require_client_auth=root is not None,
        )

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=self._interceptors(),
            maximum_concurrent_rpcs=self.settings.max_concurrent_rpcs,
            options=[("grpc.so_reuseport", int(self.settings.reuse_port))],
        )
        names = [reflection.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        for b in self.bindings:
            b.add_to_server(b.servicer, server)
            names.append(b.descriptor.full_name)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(names, server)
        address = f"{self.settings.host}:{self.settings.port}"
        creds = self._credentials()
        self.port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
        await server.start()
        self._server = server
        for b in self.bindings:
            await self.health.set(b.descriptor.full_name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc_started", address=f"{self.settings.host}:{self.port}", tls=creds is not None)

    async def out_of_rotation(self) -> None:
        """NOT_SERVING for every service from now on (the process failed and is about to stop)."""
        await self.health.enter_graceful_shutdown()

    async def stop(self) -> None:
        """Report NOT_SERVING first so balancers drain us, then finish in-flight RPCs within the grace."""
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self.settings.grace_s)
        self._server = None
