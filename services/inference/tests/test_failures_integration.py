"""Failure behaviour on real servers: Triton stopped and restarted, Redis stopped, the fallback score."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from kestrel.api.v1 import inference_pb2_grpc
from kestrel.common.breaker import State
from kestrel.common.grpc.server import GrpcServer
from kestrel.common.runtime.runner import ServiceApp
from kestrel.devstack.paths import model_repository
from kestrel.devstack.redis_server import RedisServer
from kestrel.devstack.triton import TritonServer
from kestrel.inference.app import CheckedModel, ConfigurationError
from kestrel.inference.service import API

from .support import MODEL, event, now_ms, request, settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def own_triton(tmp_path):
    """A tritonserver of this test's own, to stop and start again on the same ports."""
    server = TritonServer(tmp_path / "triton", model_repository(), load_models=[MODEL])
    server.die_with_parent = True
    await server.start()
    yield server
    await server.stop()


async def serve(app: ServiceApp):
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}")
    return channel, inference_pb2_grpc.InferenceServiceStub(channel)


async def test_triton_down_gives_unavailable_fails_fast_and_recovers_by_itself(kafka, redis_server, topics, own_triton):
    app = API.app(
        settings(
            topics, redis_server.url, own_triton.grpc_url, breaker_failures=3, breaker_reset_s=0.5, triton_timeout_s=1.0
        )
    )
    channel, stub = await serve(app)
    try:
        assert (await stub.Predict(request(event("card-t", now_ms(), 10.0)), timeout=10)).model_version == "1"
        await own_triton.stop()
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Predict(request(event("card-t", now_ms(), 10.0)), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "triton" in info.value.details()
        assert app.part(CheckedModel).model.breaker.state is State.OPEN
        started = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Predict(request(event("card-t", now_ms(), 10.0)), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "circuit open" in info.value.details()
        assert time.perf_counter() - started < 0.5  # refused without waiting for a deadline
        await own_triton.start()
        async with asyncio.timeout(60):
            while True:
                try:
                    response = await stub.Predict(request(event("card-t", now_ms(), 10.0)), timeout=10)
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE
                    await asyncio.sleep(0.2)
        assert response.model_name == MODEL and list(response.flags) == ["missing_features"]  # a new card
        assert app.part(CheckedModel).model.breaker.state is State.CLOSED
    finally:
        await channel.close()
        await app.stop()


async def test_fallback_score_is_served_flagged_while_triton_is_down(kafka, redis_server, topics, own_triton):
    app = API.app(
        settings(
            topics, redis_server.url, own_triton.grpc_url, fallback_score=0.25, breaker_failures=1, triton_timeout_s=1.0
        )
    )
    channel, stub = await serve(app)
    try:
        await own_triton.stop()
        response = await stub.Predict(request(event("card-f", now_ms(), 10.0)), timeout=10)
        assert response.score == 0.25 and response.degraded and "fallback_score" in response.flags
        assert response.model_name == "fallback" and not response.decision
        (record,) = await topics.read(topics.predictions, 1)
        assert record["degraded"] and record["model_name"] == "fallback" and "fallback_score" in record["flags"]
    finally:
        await channel.close()
        await app.stop()


async def test_redis_down_scores_with_defaults_flagged(kafka, fraud_model, topics, tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.die_with_parent = True
    await redis.start()
    app = API.app(settings(topics, redis.url, fraud_model.grpc_url, redis_timeout_s=0.2))
    channel, stub = await serve(app)
    try:
        first = await stub.Predict(request(event("card-r", now_ms(), 10.0)), timeout=10)
        assert list(first.flags) == ["missing_features"]
        await redis.stop()
        started = time.perf_counter()
        response = await stub.Predict(request(event("card-r", now_ms(), 10.0)), timeout=10)
        assert time.perf_counter() - started < 2
        assert response.degraded and list(response.flags) == ["online_store_unavailable"]
        assert response.model_name == MODEL and 0 <= response.score <= 1
        await redis.start()
        async with asyncio.timeout(20):
            while (
                "online_store_unavailable"
                in (await stub.Predict(request(event("card-r", now_ms(), 1.0)), timeout=10)).flags
            ):
                await asyncio.sleep(0.2)
    finally:
        await channel.close()
        await app.stop()
        await redis.stop()


async def test_a_model_that_does_not_take_the_feature_vector_refuses_to_start(kafka, redis_server, fraud_model, topics):
    await fraud_model.load_model("kestrel_smoke")  # 8 inputs named INPUT__0: not a Kestrel scoring model
    app = API.app(settings(topics, redis_server.url, fraud_model.grpc_url, model_name="kestrel_smoke"))
    try:
        with pytest.raises(ConfigurationError, match="no FEATURES input"):
            await app.start()
    finally:
        await fraud_model.unload_model("kestrel_smoke")
