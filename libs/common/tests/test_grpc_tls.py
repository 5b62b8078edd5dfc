"""TLS and mutual TLS on the gRPC bootstrap, with certificates made by openssl for the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest

from kestrel.common.grpc.server import GrpcServer, GrpcServerSettings, ServiceBinding

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


async def echo(request: bytes, context) -> bytes:
    return request


class _Descriptor:
    full_name = "test.Echo"


def _add(servicer, server):
    handler = grpc.unary_unary_rpc_method_handler(servicer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", {"Call": handler}),))


async def _serve(pki: Path, mutual: bool) -> GrpcServer:
    settings = GrpcServerSettings(
        host="127.0.0.1",
        port=0,
        tls_certfile=pki / "server.crt",
        tls_keyfile=pki / "server.key",
        tls_client_cafile=(pki / "ca.crt") if mutual else None,
    )
    server = GrpcServer(settings, [ServiceBinding(echo, _add, _Descriptor())])
    await server.start()
    return server


async def _call(port: int, creds: grpc.ChannelCredentials) -> bytes:
    options = (("grpc.ssl_target_name_override", "localhost"),)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds, options=options) as channel:
        return await channel.unary_unary("/test.Echo/Call")(b"hi", timeout=5)


async def test_tls_serves_clients_that_trust_the_ca_and_refuses_plaintext(pki):
    server = await _serve(pki, mutual=False)
    try:
        ca = (pki / "ca.crt").read_bytes()
        assert await _call(server.port, grpc.ssl_channel_credentials(ca)) == b"hi"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await plain.unary_unary("/test.Echo/Call")(b"hi", timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop()


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(pki):
    server = await _serve(pki, mutual=True)
    try:
        ca = (pki / "ca.crt").read_bytes()
        with pytest.raises(grpc.aio.AioRpcError):
            await _call(server.port, grpc.ssl_channel_credentials(ca))
        creds = grpc.ssl_channel_credentials(ca, (pki / "client.key").read_bytes(), (pki / "client.crt").read_bytes())
        assert await _call(server.port, creds) == b"hi"
    finally:
        await server.stop()
