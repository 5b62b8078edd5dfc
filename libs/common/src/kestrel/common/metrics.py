"""Prometheus metrics endpoint per service."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server


class MetricsEndpoint:
    """Serves /metrics from a daemon thread (prometheus_client's own server); port 0 disables it."""

    def __init__(self, port: int, registry: CollectorRegistry = REGISTRY, host: str = "0.0.0.0") -> None:
        self.port = port
        self._registry = registry
        self._host = host
        self._server: Any = None

    async def start(self) -> None:
        if self.port:
            self._server, _thread = start_http_server(self.port, addr=self._host, registry=self._registry)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
