"""A gRPC service as the production manifests run it: TLS from a certificate, tokens required, and the HTTPS health
port the kubelet probes, all from the service's own settings and wiring (ingest; no broker needed to answer)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kestrel.common.grpc.server import GrpcServer
from kestrel.common.health import HealthEndpoint
from kestrel.common.runtime.runner import ServiceApp
from kestrel.devstack.pki import Pki, available, make_pki
from kestrel.devstack.ports import free_port
from kestrel.ingest.service import SERVICE
from kestrel.ingest.settings import IngestSettings

pytestmark = pytest.mark.skipif(not available(), reason="needs the openssl command")

TOKEN = "tls-front-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def front(pki) -> AsyncIterator[tuple[int, int]]:
    settings = IngestSettings(
        kafka_bootstrap="127.0.0.1:1",
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        health_port=free_port(),
        tls_certfile=str(pki.server_cert),
        tls_keyfile=str(pki.server_key),
        require_auth=True,
        auth_tokens=[TOKEN],
    )
    app = ServiceApp(SERVICE, settings)
    health, server = app.part(HealthEndpoint), app.part(GrpcServer)
    await health.start()
    await server.start()
    yield health.port, server.port
    await server.stop()
    await health.stop()


async def _https(port: int, path: str) -> bytes:
    kubelet = ssl.create_default_context()  # the kubelet's HTTPS probe verifies nothing
    kubelet.check_hostname, kubelet.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=kubelet)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: pod\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_the_probe_gets_https_health_from_the_services_certificate(front):
    health_port, _ = front
    assert (await _https(health_port, "/healthz")).startswith(b"HTTP/1.1 200 OK")


async def test_grpc_speaks_tls_only_and_still_wants_the_token(front, pki):
    _, grpc_port = front
    creds = grpc.ssl_channel_credentials(pki.ca.read_bytes())
    options = (("grpc.ssl_target_name_override", "localhost"),)
    async with grpc.aio.secure_channel(f"127.0.0.1:{grpc_port}", creds, options=options) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        publish = channel.unary_unary("/kestrel.api.v1.IngestService/Publish")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await publish(b"", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health_pb2_grpc.HealthStub(plaintext).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
