"""Predict, PredictBatch and PredictStream against real Redis, Kafka and tritonserver (dynamic batching)."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.grpc.server import GrpcServer
from kestrel.featureset import offline
from kestrel.featureset.records import record_features
from kestrel.featureset.request import RequestFeatures
from kestrel.inference.app import CheckedModel
from kestrel.inference.service import API

from .support import CARD, MODEL, event, history, now_ms, request, settings, store_vectors

pytestmark = pytest.mark.integration

EXACT = RequestFeatures(CARD).exact


@pytest.fixture
async def api(kafka, redis_server, fraud_model, topics):
    app = API.app(settings(topics, redis_server.url, fraud_model.grpc_url))
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}")
    yield app, inference_pb2_grpc.InferenceServiceStub(channel)
    await channel.close()
    await app.stop()


def exact_columns() -> list[int]:
    return [CARD.names.index(name) for name in EXACT]


async def test_predict_merges_the_event_into_online_features_and_publishes_the_record(
    api, topics, artifact, redis_server
):
    app, stub = api
    t = now_ms() - 60_000
    past = history("card-p1", 6, t - 5_000)  # 20 s apart: no stored event leaves a window in those 5 s
    await store_vectors(redis_server.url, topics.key_prefix, past)
    current = event("card-p1", t, 950.0, merchant="m-new", country="BR")
    response = await stub.Predict(request(current, request_id="r-1"), timeout=10)

    expected = np.asarray(offline.compute([*past, current], CARD)[-1])
    (record,) = await topics.read(topics.predictions, 1)
    features = np.array(record_features(record, CARD))
    cols = exact_columns()
    np.testing.assert_allclose(features[cols], expected[cols], rtol=1e-9, atol=1e-9)
    score = float(artifact.predict(features[None, :].astype(np.float32))[0])
    assert response.score == pytest.approx(score, abs=1e-5)
    assert response.decision == (response.score >= response.threshold) and response.threshold == 0.5
    assert (response.model_name, response.model_version) == (MODEL, "1")
    assert response.feature_set_version == CARD.version_id and not response.degraded and not response.flags
    assert 65_000 <= response.features_age_ms < 120_000
    assert record["prediction_id"] == response.prediction_id and record["source"] == "api"
    assert record["event_id"] == current["event_id"] and record["score"] == pytest.approx(response.score)
    assert record["latency_us"] > 0 and record["model_version"] == "1"


async def test_unknown_entity_is_scored_with_first_event_features_and_flagged(api, topics, artifact):
    app, stub = api
    current = event("card-nobody", now_ms(), 12.5)
    response = await stub.Predict(request(current), timeout=10)
    assert response.degraded and list(response.flags) == ["missing_features"] and response.features_age_ms == -1
    expected = np.asarray(offline.compute([current], CARD)[0])
    assert response.score == pytest.approx(float(artifact.predict(expected[None, :].astype(np.float32))[0]), abs=1e-5)


async def test_an_event_already_in_the_store_is_not_counted_twice(api, topics, redis_server):
    app, stub = api
    past = history("card-p2", 4, now_ms() - 5_000)
    stored = await store_vectors(redis_server.url, topics.key_prefix, past)
    await stub.Predict(request(past[-1]), timeout=10)
    (record,) = await topics.read(topics.predictions, 1)
    assert record_features(record, CARD) == pytest.approx(stored["card-p2"])


async def test_predict_batch_answers_in_order_like_single_predicts(api, topics, redis_server):
    app, stub = api
    t = now_ms() - 10_000
    pasts = [history(f"card-b{i}", 3, t - 40_000, seed=i) for i in range(20)]
    await store_vectors(redis_server.url, topics.key_prefix, [e for p in pasts for e in p])
    requests = [request(event(f"card-b{i % 25}", t + i, 10.0 + i)) for i in range(300)]
    batch = await stub.PredictBatch(inference_pb2.PredictBatchRequest(requests=requests), timeout=20)
    assert len(batch.responses) == 300
    singles = await asyncio.gather(*(stub.Predict(r, timeout=20) for r in requests[:40]))
    assert [r.score for r in batch.responses[:40]] == pytest.approx([r.score for r in singles], abs=1e-6)
    assert [bool(r.flags) for r in batch.responses[:25]] == [i >= 20 for i in range(25)]
    assert len({r.prediction_id for r in batch.responses}) == 300


async def test_invalid_requests_are_rejected_naming_the_field(api):
    app, stub = api
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Predict(inference_pb2.PredictRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "event" in info.value.details()
    bad = event("card-x", now_ms(), -3.0)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Predict(request(bad), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "event.amount" in info.value.details()
    requests = [request(event("card-x", now_ms(), 5.0)) for _ in range(10)]
    requests[7] = request(dict(bad, event_id="e-7", amount=float("nan")))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PredictBatch(inference_pb2.PredictBatchRequest(requests=requests), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "requests[7].event.amount" in info.value.details()
    assert (await stub.PredictBatch(inference_pb2.PredictBatchRequest(), timeout=5)).responses == []


async def test_predict_stream_answers_every_request_in_order(api, topics):
    app, stub = api
    t = now_ms()
    requests = [request(event(f"card-s{i % 7}", t + i, float(i % 300) + 1), request_id=str(i)) for i in range(600)]

    async def feed():
        for r in requests:
            yield r

    responses = [r async for r in stub.PredictStream(feed(), timeout=30)]
    assert len(responses) == 600
    batch = await stub.PredictBatch(inference_pb2.PredictBatchRequest(requests=requests[:50]), timeout=20)
    assert [r.score for r in responses[:50]] == pytest.approx([r.score for r in batch.responses], abs=1e-6)
    assert len(await topics.read(topics.predictions, 650)) == 650


async def test_predict_stream_stops_at_an_invalid_request_naming_it(api):
    app, stub = api
    t = now_ms()
    requests = [request(event("card-s", t + i, 5.0)) for i in range(30)]
    requests[12] = inference_pb2.PredictRequest()

    async def feed():
        for r in requests:
            yield r

    call = stub.PredictStream(feed(), timeout=10)
    answered = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for response in call:
            answered.append(response)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "requests[12].event" in info.value.details()
    assert len(answered) == 12  # every request before the bad one was answered


async def test_reflection_lets_a_client_without_the_protos_call_predict(api):
    """What `grpcurl -plaintext host:50052 ... /Predict` does: descriptors from reflection, JSON in and out."""
    from google.protobuf import descriptor_pool, json_format, message_factory
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    app, _ = api
    address = f"127.0.0.1:{app.part(GrpcServer).port}"
    with grpc.insecure_channel(address) as channel:  # the reflection database is a synchronous client
        database = ProtoReflectionDescriptorDatabase(channel)
        services = await asyncio.to_thread(database.get_services)
        pool = descriptor_pool.DescriptorPool(database)
        method = (await asyncio.to_thread(pool.FindServiceByName, "kestrel.api.v1.InferenceService")).FindMethodByName(
            "Predict"
        )
    assert "kestrel.api.v1.InferenceService" in services and "grpc.health.v1.Health" in services
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    body = {
        "event": {
            "event_id": "e-json",
            "entity_id": "card-json",
            "amount": 12.5,
            "currency": "EUR",
            "merchant_id": "m-7",
            "merchant_category": "5411",
            "country": "DE",
            "channel": "pos",
            "event_time": "2026-11-22T12:00:00Z",
        }
    }
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            "/kestrel.api.v1.InferenceService/Predict",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        reply = json_format.MessageToDict(await call(json_format.ParseDict(body, request_cls()), timeout=10))
    assert reply["modelName"] == MODEL and 0 <= reply.get("score", 0) <= 1 and reply["flags"] == ["missing_features"]


async def test_predict_stream_whose_first_request_is_invalid_answers_nothing_and_names_it(api):
    app, stub = api

    async def feed():
        yield inference_pb2.PredictRequest()
        yield request(event("card-s", now_ms(), 5.0))

    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.PredictStream(feed(), timeout=10):
            pytest.fail("nothing comes before the invalid first request")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "requests[0].event" in info.value.details()
    assert app.part(CheckedModel).model.breaker.state.name == "CLOSED"
