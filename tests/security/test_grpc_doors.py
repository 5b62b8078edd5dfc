"""Closed doors on every gRPC API: the services' own wiring, tokens configured, every method of every service asked
without a token and with a wrong one; health stays open for probes, reflection does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kestrel.api.v1 import inference_pb2, ingest_pb2
from kestrel.common.grpc.server import GrpcServer
from kestrel.common.runtime.runner import ServiceApp
from kestrel.inference.service import API
from kestrel.inference.settings import InferenceSettings
from kestrel.ingest.service import SERVICE as INGEST
from kestrel.ingest.settings import IngestSettings

TOKEN = "d00r-t0ken"
NOWHERE = dict(kafka_bootstrap="127.0.0.1:1", grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, health_port=0)
SERVICES = {
    "ingest": (INGEST, IngestSettings, ingest_pb2.DESCRIPTOR.services_by_name["IngestService"], {}),
    "inference": (
        API,
        InferenceSettings,
        inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
        dict(redis_url="redis://127.0.0.1:1/0", triton_url="127.0.0.1:1", follow_lifecycle=False),
    ),
}
DENIED = {"no token": (), "wrong token": (("authorization", "Bearer not-the-token"),)}


@pytest.fixture(scope="module", params=sorted(SERVICES))
async def served(request) -> AsyncIterator[tuple[str, Any, int]]:
    """The service's real wiring with auth_tokens set; only its gRPC server is started (no broker is needed to
    turn a caller away, and none is there: an admitted call fails in the service, not at the door)."""
    service, settings_cls, descriptor, extra = SERVICES[request.param]
    app = ServiceApp(service, settings_cls(**NOWHERE, **extra, require_auth=True, auth_tokens=[TOKEN]))
    server = app.part(GrpcServer)
    await server.start()
    yield request.param, descriptor, server.port
    await server.stop()


def _call(channel: grpc.aio.Channel, method: Any) -> Any:
    path = f"/{method.containing_service.full_name}/{method.name}"
    request_cls = _message(method.input_type)
    serializers = dict(request_serializer=request_cls.SerializeToString, response_deserializer=lambda b: b)
    shape = (method.client_streaming, method.server_streaming)
    factory = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[shape]
    return factory(path, **serializers), request_cls(), method.client_streaming, method.server_streaming


def _message(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


async def _status(
    channel: grpc.aio.Channel, method: Any, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """The status of one call with an empty request: OK when it was answered."""
    stub, request, streaming_in, streaming_out = _call(channel, method)
    call = stub(iter([request]) if streaming_in else request, metadata=metadata, timeout=10)
    try:
        if streaming_out:
            async for _ in call:
                pass
        else:
            await call
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("who", sorted(DENIED))
async def test_every_method_turns_away_callers_without_the_token(served, who):
    name, descriptor, port = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        answers = {method.name: await _status(channel, method, DENIED[who]) for method in descriptor.methods}
    assert answers == {
        m.name: (grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token") for m in descriptor.methods
    }


async def test_the_token_opens_every_method(served):
    """An empty request with the token gets past the door: the service itself answers (INVALID_ARGUMENT for the
    missing fields, UNAVAILABLE for the absent broker), never UNAUTHENTICATED."""
    name, descriptor, port = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        codes = {
            m.name: (await _status(channel, m, (("authorization", f"Bearer {TOKEN}"),)))[0] for m in descriptor.methods
        }
    assert grpc.StatusCode.UNAUTHENTICATED not in codes.values(), codes


async def test_health_is_open_for_probes_and_reflection_is_not(served):
    name, descriptor, port = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=descriptor.full_name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in reflection.ServerReflectionInfo(iter([ask]), timeout=5):
                pass
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        authorized = (("authorization", f"Bearer {TOKEN}"),)
        async for reply in reflection.ServerReflectionInfo(iter([ask]), metadata=authorized, timeout=5):
            assert descriptor.full_name in [s.name for s in reply.list_services_response.service]


def test_every_grpc_service_of_the_api_is_asked_here():
    """A new gRPC service in protos/ fails this until it is added to SERVICES (and so asked at its door)."""
    import pkgutil

    import kestrel.api.v1 as api

    modules = [m.name for m in pkgutil.iter_modules(api.__path__) if m.name.endswith("_pb2")]
    declared = {
        s.full_name
        for m in modules
        for s in __import__(f"kestrel.api.v1.{m}", fromlist=["DESCRIPTOR"]).DESCRIPTOR.services_by_name.values()
    }
    assert declared == {descriptor.full_name for _, _, descriptor, _ in SERVICES.values()}
