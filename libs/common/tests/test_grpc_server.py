"""gRPC bootstrap over a real in-process server: error mapping, token auth, health."""

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from kestrel.common.errors import InvalidArgumentError, NotFoundError, OverloadedError, UnavailableError
from kestrel.common.grpc.interceptors import ErrorMappingInterceptor, request_context
from kestrel.common.grpc.server import GrpcServer, GrpcServerSettings, ServiceBinding

ERRORS = {
    b"full": OverloadedError("ingest at capacity", retry_after_ms=150),
    b"invalid": InvalidArgumentError("event.amount", "must be >= 0"),
    b"missing": NotFoundError("model 'x' not found"),
    b"down": UnavailableError("redis unreachable"),
    b"bug": RuntimeError("secret internals"),
}


async def echo(request: bytes, context) -> bytes:
    if request in ERRORS:
        raise ERRORS[request]
    return request


class _Descriptor:
    full_name = "test.Echo"


def _add(servicer, server):
    handler = grpc.unary_unary_rpc_method_handler(servicer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", {"Call": handler}),))


async def _server(**settings):
    server = GrpcServer(
        GrpcServerSettings(host="127.0.0.1", port=0, **settings), [ServiceBinding(echo, _add, _Descriptor())]
    )
    await server.start()
    return server


@pytest.mark.parametrize(
    ("payload", "code", "detail"),
    [
        (b"invalid", grpc.StatusCode.INVALID_ARGUMENT, "event.amount: must be >= 0"),
        (b"missing", grpc.StatusCode.NOT_FOUND, "model 'x' not found"),
        (b"down", grpc.StatusCode.UNAVAILABLE, "redis unreachable"),
        (b"bug", grpc.StatusCode.INTERNAL, "internal error"),
    ],
)
async def test_domain_errors_map_to_status(payload, code, detail):
    server = await _server()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await channel.unary_unary("/test.Echo/Call")(payload)
            assert err.value.code() == code
            assert err.value.details() == detail
            assert await channel.unary_unary("/test.Echo/Call")(b"ok") == b"ok"
    finally:
        await server.stop()


async def test_token_auth_guards_methods_but_not_health():
    server = await _server(auth_tokens=[SecretStr("s3cret")])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = channel.unary_unary("/test.Echo/Call")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(b"ok")
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError):
                await call(b"ok", metadata=(("authorization", "Bearer wrong"),))
            assert await call(b"ok", metadata=(("authorization", "Bearer s3cret"),)) == b"ok"
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service="test.Echo"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop()


async def test_each_call_logs_with_its_request_id_and_our_failures_warn():
    from structlog.testing import capture_logs

    server = await _server()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with (
                capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs,
                pytest.raises(grpc.aio.AioRpcError),
            ):
                await channel.unary_unary("/test.Echo/Call")(b"down", metadata=[("x-request-id", "req-42")])
    finally:
        await server.stop()
    [line] = [e for e in logs if e["event"] == "rpc_error"]
    assert (line["log_level"], line["code"], line["request_id"], line["rpc"]) == (
        "warning",
        "UNAVAILABLE",
        "req-42",
        "Call",
    )


async def test_a_methods_wrapped_handler_is_built_once_and_rebuilt_for_a_new_handler():
    interceptor = ErrorMappingInterceptor()
    details = grpc.HandlerCallDetails()
    details.method, details.invocation_metadata = "/test.Echo/Call", ()
    first, second = grpc.unary_unary_rpc_method_handler(echo), grpc.unary_unary_rpc_method_handler(echo)

    async def serving(handler):
        async def continuation(_):
            return handler

        return await interceptor.intercept_service(continuation, details)

    wrapped = await serving(first)
    assert await serving(first) is wrapped
    assert await serving(second) is not wrapped  # a re-registered method must not keep the old behaviour


def test_fresh_request_ids_are_16_hex_and_distinct():
    ids = {request_context("/test.Echo/Call", ())["request_id"] for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


async def _reflected_services(channel, metadata=()) -> list[str]:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([ask]), metadata=metadata):
        return [s.name for s in reply.list_services_response.service]
    return []


async def test_reflection_describes_the_api_only_to_callers_with_a_token():
    server = await _server(auth_tokens=[SecretStr("s3cret")])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            for metadata in ((), (("authorization", "Bearer wrong"),)):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await _reflected_services(channel, metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert err.value.details() == "missing or invalid bearer token"
            assert "test.Echo" in await _reflected_services(channel, (("authorization", "Bearer s3cret"),))
    finally:
        await server.stop()


async def test_without_tokens_reflection_stays_open_for_the_local_stack():
    server = await _server()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            assert "test.Echo" in await _reflected_services(channel)
    finally:
        await server.stop()


async def test_an_empty_token_admits_nobody():
    from kestrel.common.grpc.interceptors import TokenAuthInterceptor

    auth = TokenAuthInterceptor(["", "s3cret"])
    assert not auth._allowed((("authorization", "Bearer "),))
    assert auth._allowed((("authorization", "Bearer s3cret"),))


async def test_overload_is_resource_exhausted_with_grpc_retry_pushback():
    server = await _server()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = channel.unary_unary("/test.Echo/Call")(b"full")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.value.details() == "ingest at capacity; retry in 150 ms"
            assert ("grpc-retry-pushback-ms", "150") in tuple(err.value.trailing_metadata())
    finally:
        await server.stop()
