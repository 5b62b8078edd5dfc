"""Bad input straight into every consumed topic: each frame is processed or dead-lettered with a reason, the
consumer neither crashes nor stalls, and a valid record sent after the garbage still has its effect."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from hypothesis import strategies as st

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.grpc.server import GrpcServer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.devstack.topics import PrefixedTopics

from .feed import fuzz_topic, read_vectors, send_records
from .records import CARD
from .sample import draw, share
from .servers import MODEL, inference_api
from .starters import Endpoints
from .strategies import NOW_MS, frames, valid_event
from .tally import Outcome, Tally
from .targets import NAMES, target

pytestmark = pytest.mark.integration


def endpoints(kafka, redis_server, postgres, triton) -> Endpoints:
    return Endpoints(kafka.bootstrap, redis_server.url, postgres.dsn, triton.grpc_url)


@pytest.mark.parametrize("name", NAMES)
async def test_consumer_dead_letters_bad_frames_and_keeps_going(name, kafka, redis_server, postgres, triton) -> None:
    if "scorer" in name:
        await triton.ensure_loaded(MODEL)
    found = target(name, endpoints(kafka, redis_server, postgres, triton))
    tally = await fuzz_topic(found, PrefixedTopics(kafka.bootstrap), salt=100 + NAMES.index(name))
    assert tally.counts[Outcome.UNCLEAR] == 0, f"{name}: {tally.unclear[:5]}"
    assert tally.counts[Outcome.DEAD_LETTER] > 0


RETRY = st.sampled_from(["none", "none", "at once", "later", "restamped"])


@st.composite
def card_histories(draw: st.DrawFn) -> list[tuple[str, float, int]]:
    """One card's (event id, amount, time offset ms) in send order, with retries: the same id sent again at once,
    after other events, or re-stamped by the client a little later."""
    sent: list[tuple[str, float, int]] = []
    for i in range(draw(st.integers(2, 12))):
        sent.append((f"e-{i}", draw(st.floats(0.01, 5000, allow_nan=False)), i * 1000))
        retry = draw(RETRY)
        if retry != "none":
            again = sent[-1] if retry == "at once" else draw(st.sampled_from(sent))
            sent.append((again[0], again[1], again[2] + (7 if retry == "restamped" else 0)))
    return sent


async def test_a_retried_event_id_is_counted_once_in_its_cards_features(kafka, redis_server, postgres, triton) -> None:
    """Clients retry: an event id the features service already holds adds nothing to its card's counts and sums,
    and gets no second vector (the stream's dedup by id hash, end to end through Kafka)."""
    histories = draw(card_histories(), 20, salt=900)
    topics = PrefixedTopics(kafka.bootstrap)
    features = target("events -> features", endpoints(kafka, redis_server, postgres, triton))
    await topics.apply("kestrel.events.v1")
    base = NOW_MS - 3_600_000
    records = [
        valid_event(0, entity=f"card-retry-{c}", t_ms=base + offset) | {"event_id": f"c{c}-{eid}", "amount": amount}
        for c, history in enumerate(histories)
        for eid, amount, offset in history
    ]
    serde = serde_for_topic(FileSchemaRegistry(), topics.name("kestrel.events.v1"), "event")
    await send_records(topics, "kestrel.events.v1", [(r["entity_id"].encode(), serde.serialize(r)) for r in records])
    app = await features.start(topics)
    try:
        distinct = {r["event_id"]: r for r in records}  # the first send of each id is the one counted
        vectors = await read_vectors(topics, len(distinct))
    finally:
        await app.stop()
    assert sorted(v["event_id"] for v in vectors) == sorted(distinct)  # one vector per id, none for a retry
    count, total = CARD.names.index("txn_count_24h"), CARD.names.index("amount_sum_24h")
    for c, history in enumerate(histories):
        ids = {f"c{c}-{eid}": amount for eid, amount, _ in history}
        last = max((v for v in vectors if v["entity_id"] == f"card-retry-{c}"), key=lambda v: v["event_time"])
        assert last["feature_values"][count] == len(ids)
        assert last["feature_values"][total] == pytest.approx(sum(ids.values()))


async def test_the_lifecycle_follower_skips_garbage_and_follows_the_next_promotion(kafka, redis_server, triton) -> None:
    """Every inference replica reads the lifecycle topic whole, without a group or dead letters: an unreadable
    record is skipped with a warning. After the garbage, a promotion is still followed and Predict answers."""
    await triton.ensure_loaded(MODEL)
    app, topics = await inference_api(kafka.bootstrap, redis_server.url, triton.grpc_url)
    try:
        name = topics.name("kestrel.model-lifecycle.v1")
        serde = serde_for_topic(FileSchemaRegistry(), name, "model_lifecycle")
        labels = serde_for_topic(FileSchemaRegistry(), topics.name("kestrel.labels.v1"), "label")
        garbage = draw(
            frames(serde, "model_lifecycle", labels, "label"), share("model-lifecycle -> inference"), salt=950
        )
        promoted = {"model_name": MODEL, "version": "1", "stage": "promoted", "metrics": {}, "at": NOW_MS}
        records = [(MODEL.encode(), v) for v in garbage] + [(MODEL.encode(), serde.serialize(promoted))]
        await send_records(topics, "kestrel.model-lifecycle.v1", records)  # type: ignore[arg-type]
        stub = inference_pb2_grpc.InferenceServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}")
        )
        request = inference_pb2.PredictRequest(event=record_to_event(valid_event(3)))
        deadline = time.monotonic() + 60
        while (answer := await stub.Predict(request, timeout=10)).model_version != "1":
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.5)
        assert not app.failed and answer.model_name == MODEL
    finally:
        await app.stop()
    tally = Tally("model-lifecycle -> inference")
    for _ in records:
        tally.add(Outcome.OK)  # skipped or applied, and the promotion after them all was followed
    tally.save()
