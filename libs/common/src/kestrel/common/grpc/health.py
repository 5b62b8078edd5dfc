"""Client side of the gRPC health protocol: wait until a server (or one of its services) is SERVING."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kestrel.common.errors import UnavailableError


async def wait_serving(address: str, timeout_s: float = 30.0, service: str = "") -> None:
    """Poll Health.Check on a plaintext channel; UnavailableError if not SERVING within the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while asyncio.get_running_loop().time() < deadline:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
    raise UnavailableError(f"{address} did not report SERVING within {timeout_s:g}s")
