"""The one prediction record builder, and the servicer's protobuf conversion, against the real schema."""

from __future__ import annotations

from kestrel.api.v1 import inference_pb2
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.featureset.records import record_features
from kestrel.featureset.wire import PredictionEncoder
from kestrel.inference.core import NEWER, STALE, Prediction
from kestrel.inference.records import PredictionRecords
from kestrel.inference.servicer import to_request, to_response

from .support import CARD, event, now_ms, request


def prediction(**overrides) -> Prediction:
    fields = dict(
        prediction_id="p-1",
        entity_id="card-1",
        event_id="e-1",
        event_time=1_000,
        score=0.75,
        decision=True,
        threshold=0.5,
        model_name="kestrel_fraud",
        model_version="2",
        feature_set_version=CARD.version_id,
        features=[float(i) for i in range(len(CARD.names))],
        features_age_ms=300,
        flags=[STALE, NEWER],
        request_id="r-1",
    )
    return Prediction(**{**fields, **overrides})


def test_a_prediction_record_carries_every_field_of_the_prediction():
    serde = serde_for_topic(FileSchemaRegistry(), "kestrel.predictions.v1", "prediction")
    records = PredictionRecords(PredictionEncoder(serde, CARD.names), "kestrel.predictions.v1", "stream")
    (out,) = records.records([prediction()], latency_us=42, predicted_at=2_000)
    value = serde.deserialize(out.value)
    assert out.topic == "kestrel.predictions.v1" and out.key == b"card-1"
    assert value["features"] == {}  # packed: the names come from the feature set, not from every record
    assert record_features(value, CARD) == prediction().features
    assert {k: v for k, v in value.items() if k not in ("features", "feature_values")} == {
        "prediction_id": "p-1",
        "event_id": "e-1",
        "entity_id": "card-1",
        "event_time": 1_000,
        "model_name": "kestrel_fraud",
        "model_version": "2",
        "score": 0.75,
        "threshold": 0.5,
        "decision": True,
        "feature_set_version": CARD.version_id,
        "features_age_ms": 300,
        "degraded": True,
        "flags": [STALE, NEWER],
        "latency_us": 42,
        "source": "stream",
        "predicted_at": 2_000,
    }


def test_the_servicer_converts_requests_to_plain_values_and_predictions_back():
    record = event("card-1", now_ms(), 5.0)
    plain = to_request(request(record, entity_id="acct-9", request_id="r-9"))
    assert plain.event == record and (plain.entity_id, plain.request_id) == ("acct-9", "r-9") and plain.size > 0
    assert to_request(inference_pb2.PredictRequest(request_id="r-0")).event is None
    response = to_response(prediction())
    assert (response.prediction_id, response.score, response.decision, response.degraded) == ("p-1", 0.75, True, True)
    assert list(response.flags) == [STALE, NEWER] and response.feature_set_version == CARD.version_id
