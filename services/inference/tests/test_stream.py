"""StreamScorer with stand-ins for Triton and Kafka: records built once per vector, and one log line per batch."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import BatchAck, Delivery
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.featureset.wire import PredictionEncoder, VectorEncoder
from kestrel.inference.core import stream_prediction_id
from kestrel.inference.model import Scores
from kestrel.inference.records import PredictionRecords
from kestrel.inference.stream import StreamScorer

from .support import CARD, now_ms

VECTORS = serde_for_topic(FileSchemaRegistry(), "kestrel.features.v1", "feature_vector")
PREDICTIONS = serde_for_topic(FileSchemaRegistry(), "kestrel.predictions.v1", "prediction")


class Model:
    name = "kestrel_fraud"
    down = False

    async def score(self, matrix, concurrency=8):
        if self.down:
            raise UnavailableError("triton down")
        return Scores(np.full(len(matrix), 0.75), ["3"] * len(matrix))


class Producer:
    def __init__(self):
        self.sent = []

    async def produce_batch(self, records):
        self.sent += records
        return DeliveredAck([Delivery(r.topic, 0, i) for i, r in enumerate(records)])


class DeliveredAck(BatchAck):
    """Every record acknowledged already."""

    def __init__(self, results: list[Delivery]) -> None:
        self._results = results

    async def wait(self, timeout_s: float | None = None) -> bool:
        return True


def consumed(n: int, partition: int = 0, first_offset: int = 100) -> list[SimpleNamespace]:
    t = now_ms()
    values = [
        {
            "entity_id": f"card-{i}",
            "event_id": f"e-{i}",
            "event_time": t,
            "feature_set_version": CARD.version_id,
            "computed_at": t,
            "features": {name: 1.0 for name in CARD.names},
        }
        for i in range(n)
    ]
    return [
        SimpleNamespace(topic="kestrel.features.v1", partition=partition, offset=first_offset + i, value=v)
        for i, v in enumerate(VECTORS.serialize_many(values))
    ]


def scorer(model, producer) -> StreamScorer:
    records = PredictionRecords(PredictionEncoder(PREDICTIONS, CARD.names), "kestrel.predictions.v1", "stream")
    return StreamScorer(VECTORS, records, model, producer, CARD, threshold=0.5)


async def test_a_batch_is_scored_into_stream_records_and_summed_up_in_one_debug_line():
    producer = Producer()
    with capture_logs(processors=[merge_contextvars]) as logs:
        assert await scorer(Model(), producer)([*consumed(2), *consumed(1, partition=3, first_offset=7)]) == []
    values = [PREDICTIONS.deserialize(r.value) for r in producer.sent]
    assert [v["prediction_id"] for v in values] == [
        stream_prediction_id(f"e-{i}", "kestrel_fraud", "3") for i in (0, 1, 0)
    ]
    assert all(v["source"] == "stream" and v["decision"] and v["model_version"] == "3" for v in values)
    (summary,) = [line for line in logs if line["event"] == "stream_batch_scored"]
    assert summary["log_level"] == "debug" and summary["scored"] == 3
    assert summary["offsets"] == "kestrel.features.v1[0]:100-101 kestrel.features.v1[3]:7-7"


async def test_a_failed_batch_logs_one_warning_with_its_offsets_and_raises():
    model = Model()
    model.down = True
    handler = scorer(model, Producer())
    with capture_logs(processors=[merge_contextvars]) as logs, pytest.raises(UnavailableError):
        await handler(consumed(2))
    (failure,) = [line for line in logs if line["log_level"] == "warning"]
    assert failure["event"] == "stream_batch_failed" and failure["offsets"] == "kestrel.features.v1[0]:100-101"
    assert handler.healthy is False


async def test_packed_vectors_and_older_writers_maps_score_alike_and_the_rest_is_dead_lettered():
    t = now_ms()
    encoder = VectorEncoder.for_feature_set(VECTORS, CARD)
    values = [[float(i * 100 + k) for k in range(len(CARD.names))] for i in range(3)]
    packed = [encoder.encode(f"card-{i}", f"p-{i}", t, values[i], t) for i in range(2)]
    named = {"entity_id": "card-2", "event_id": "n-2", "event_time": t, "computed_at": t}
    named |= {"feature_set_version": CARD.version_id, "features": dict(zip(CARD.names, values[2]))}  # older writer
    other = encoder.encode("card-9", "o-9", t, values[0], t).replace(CARD.version_id.encode(), b"card.v0")
    batch = [packed[0], VECTORS.serialize(named), b"\x00garbage", other, packed[1]]
    records = [SimpleNamespace(topic="t", partition=0, offset=i, value=v) for i, v in enumerate(batch)]
    producer = Producer()
    rejections = await scorer(Model(), producer)(records)
    assert [(r.record.offset, "card.v0" in r.reason) for r in rejections] == [(2, False), (3, True)]
    scored = {p["event_id"]: p for p in (PREDICTIONS.deserialize(r.value) for r in producer.sent)}
    assert set(scored) == {"p-0", "p-1", "n-2"}
    assert [scored[e]["feature_values"] for e in ("p-0", "p-1", "n-2")] == values
    assert all(p["features"] == {} and p["score"] == 0.75 for p in scored.values())


async def test_a_batch_of_packed_vectors_and_only_undecodable_records_scores_the_vectors():
    t = now_ms()
    encoder = VectorEncoder.for_feature_set(VECTORS, CARD)
    batch = [encoder.encode("card-1", "p-1", t, [0.5] * len(CARD.names), t), b"\x00garbage"]
    records = [SimpleNamespace(topic="t", partition=0, offset=i, value=v) for i, v in enumerate(batch)]
    producer = Producer()
    rejections = await scorer(Model(), producer)(records)
    assert [r.record.offset for r in rejections] == [1]
    assert [PREDICTIONS.deserialize(r.value)["event_id"] for r in producer.sent] == ["p-1"]


async def test_a_challenger_scores_the_same_rows_in_shadow_and_its_failure_is_not_the_batchs():
    records = PredictionRecords(PredictionEncoder(PREDICTIONS, CARD.names), "kestrel.predictions.v1", "stream")
    challenger = Model()
    producer = Producer()
    handler = StreamScorer(
        VECTORS, records, Model(), producer, CARD, threshold=0.5, shadow=(challenger, records.with_source("shadow"))
    )
    handler.shadow_version = "2"
    assert await handler(consumed(2)) == []
    sources = sorted((v["source"], v["event_id"]) for v in (PREDICTIONS.deserialize(r.value) for r in producer.sent))
    assert sources == [("shadow", "e-0"), ("shadow", "e-1"), ("stream", "e-0"), ("stream", "e-1")]
    challenger.down = True
    assert await handler(consumed(2)) == [] and handler.healthy is True
    assert len(producer.sent) == 6  # the champion's two more; the challenger's none
