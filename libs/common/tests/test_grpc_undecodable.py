"""Request bytes that are no message of the method's type: INVALID_ARGUMENT naming the request, on every shape."""

import grpc
import pytest
from grpc_health.v1 import health_pb2

from kestrel.common.grpc.server import GrpcServer, GrpcServerSettings, ServiceBinding

DECODE = health_pb2.HealthCheckRequest.FromString
ENCODE = health_pb2.HealthCheckResponse.SerializeToString
UNDECODABLE = b"\x0a\x10"  # field 1 announces 16 bytes, and the message ends


async def unary(request, context):
    return health_pb2.HealthCheckResponse()


async def stream_in(requests, context):
    _ = [r async for r in requests]
    return health_pb2.HealthCheckResponse()


async def stream_both(requests, context):
    async for _ in requests:
        yield health_pb2.HealthCheckResponse()


class _Descriptor:
    full_name = "test.Decode"


def _add(servicer, server):
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, DECODE, ENCODE),
        "StreamIn": grpc.stream_unary_rpc_method_handler(stream_in, DECODE, ENCODE),
        "StreamBoth": grpc.stream_stream_rpc_method_handler(stream_both, DECODE, ENCODE),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Decode", handlers),))


@pytest.fixture
async def channel():
    server = GrpcServer(GrpcServerSettings(host="127.0.0.1", port=0), [ServiceBinding(None, _add, _Descriptor())])
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch
    await server.stop()


async def _call(channel, method: str, body: bytes) -> None:
    if method == "Unary":
        await channel.unary_unary(f"/test.Decode/{method}")(body, timeout=5)
    elif method == "StreamIn":
        await channel.stream_unary(f"/test.Decode/{method}")(iter([body]), timeout=5)
    else:
        _ = [r async for r in channel.stream_stream(f"/test.Decode/{method}")(iter([body]), timeout=5)]


@pytest.mark.parametrize("method", ["Unary", "StreamIn", "StreamBoth"])
async def test_undecodable_request_is_invalid_argument_naming_it(channel, method):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(channel, method, UNDECODABLE)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("request: is not a valid grpc.health.v1.HealthCheckRequest")
    await _call(channel, method, health_pb2.HealthCheckRequest(service="x").SerializeToString())  # still serving
