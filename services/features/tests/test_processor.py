"""One batch through the processor: vectors keyed by entity, and every bad record rejected with its reason."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from kestrel.features.processor import BatchProcessor
from kestrel.features.store import StateStore
from kestrel.featureset import load_feature_set
from kestrel.featureset.records import record_features
from kestrel.featureset.state import FeatureComputer
from kestrel.featureset.wire import VectorEncoder

from .conftest import EVENTS, T0, VECTORS, Record, event

NOW = T0 + 86_400_000


def features(vector: dict) -> dict[str, float]:
    fs = load_feature_set()
    return dict(zip(fs.names, record_features(vector, fs)))


@pytest.fixture
def parts():
    fs = load_feature_set()
    store = StateStore(FeatureComputer(fs))
    store.load(0, {})
    store.load(1, {})
    processor = BatchProcessor(
        FeatureComputer(fs), store, EVENTS.deserialize, VectorEncoder.for_feature_set(VECTORS, fs), "features"
    )
    return fs, store, processor


def test_vectors_carry_event_id_time_version_and_features(parts) -> None:
    fs, _, processor = parts
    records = [Record(EVENTS.serialize(event(i, T0 + i * 1000)), offset=i) for i in range(3)]
    result = processor.process(records, NOW)
    assert [r.key for r in result.outputs] == [b"card-1"] * 3
    last = VECTORS.deserialize(result.outputs[-1].value)
    assert (last["event_id"], last["event_time"], last["feature_set_version"]) == ("e-2", T0 + 2000, "card.v1")
    assert last["features"] == {} and len(last["feature_values"]) == len(fs.names)  # packed, definition order
    assert features(last)["txn_count_1m"] == 3
    assert last["categories"] == {"merchant_id": "m-2", "country": "DE", "merchant_category": "5411", "channel": "pos"}
    assert result.offsets == {("events", 0): 3} and not result.rejections


def test_bad_records_are_rejected_and_the_batch_goes_on(parts) -> None:
    _, _, processor = parts
    lateness = load_feature_set().allowed_lateness_s * 1000
    records = [
        Record(b"\x00\x00\x00\x00\x01garbage", offset=0),
        Record(None, offset=1),
        Record(EVENTS.serialize(event(2, T0 + lateness + 1)), offset=2),
        Record(EVENTS.serialize(event(3, T0)), offset=3),
        Record(EVENTS.serialize(event(4, T0 + lateness + 2, amount=float("nan"))), offset=4),
        Record(EVENTS.serialize(event(5, T0 + lateness + 3)), offset=5),
    ]
    result = processor.process(records, NOW)
    kinds = [(r.record.offset, r.error_type) for r in result.rejections]
    assert kinds == [(0, "SerializationError"), (1, "SerializationError"), (3, "LateEvent"), (4, "InvalidEvent")]
    assert "undecodable" in result.rejections[0].reason and "late event" in result.rejections[2].reason
    assert len(result.outputs) == 2 and result.offsets == {("events", 0): 6}


def test_replayed_records_are_skipped_not_counted_twice(parts) -> None:
    _, store, processor = parts
    records = [Record(EVENTS.serialize(event(i, T0 + i)), partition=1, offset=i) for i in range(4)]
    processor.process(records[:3], NOW)
    result = processor.process(records[1:], NOW)
    assert result.replayed == 2 and len(result.outputs) == 1
    assert features(VECTORS.deserialize(result.outputs[0].value))["txn_count_1m"] == 4
    assert len(store.state(1, "card-1")) == 4


def test_retried_events_emit_no_second_vector_and_are_counted(parts) -> None:
    _, store, processor = parts
    before = REGISTRY.get_sample_value("kestrel_features_events_total", {"outcome": "duplicate"}) or 0
    sent = [event(0, T0), event(0, T0), event(1, T0 + 1), event(0, T0), event(1, T0 + 1, entity="card-2")]
    result = processor.process([Record(EVENTS.serialize(e), offset=i) for i, e in enumerate(sent)], NOW)
    vectors = [VECTORS.deserialize(r.value) for r in result.outputs]
    assert [(v["entity_id"], v["event_id"]) for v in vectors] == [
        ("card-1", "e-0"),
        ("card-1", "e-1"),
        ("card-2", "e-1"),
    ]
    assert features(vectors[1])["txn_count_1m"] == 2 and len(store.state(0, "card-1")) == 2
    assert result.duplicates == 2 and not result.rejections and result.offsets == {("events", 0): 5}
    assert REGISTRY.get_sample_value("kestrel_features_events_total", {"outcome": "duplicate"}) == before + 2


def test_an_event_a_year_ahead_is_dead_lettered_and_moves_no_clock(parts) -> None:
    _, store, processor = parts
    year = 365 * 86_400_000
    records = [Record(EVENTS.serialize(event(i, t)), offset=i) for i, t in enumerate([NOW - 1000, NOW + year])]
    result = processor.process(records, NOW)
    assert [(r.record.offset, r.error_type) for r in result.rejections] == [(1, "InvalidEvent")]
    assert "event_time: is more than 300s in the future" in result.rejections[0].reason
    assert len(result.outputs) == 1 and store.stream_time[0] == NOW - 1000


def test_events_ingest_would_refuse_are_dead_lettered_not_counted(parts) -> None:
    """Events reach the topic without ingest too (the simulator's Kafka sink, replays): a negative or absurd
    amount counted once poisons the card's sums and means for 24 h (found by tests/fuzz)."""
    _, _, processor = parts
    bad = [
        event(0, T0, amount=-8.5e288),
        event(1, T0 + 1, amount=3.3e246),
        event(2, T0 + 2, entity=""),
        event(3, T0 + 3, event_id=""),
        event(4, T0 + 4, country="xýH÷饖"),
    ]
    records = [Record(EVENTS.serialize(e), offset=i) for i, e in enumerate([*bad, event(5, T0 + 5)])]
    result = processor.process(records, NOW)
    assert [(r.record.offset, r.error_type) for r in result.rejections] == [(i, "InvalidEvent") for i in range(5)]
    assert "amount" in result.rejections[0].reason and "country" in result.rejections[4].reason
    (vector,) = [VECTORS.deserialize(o.value) for o in result.outputs]
    assert features(vector)["txn_count_24h"] == 1 and features(vector)["amount_sum_24h"] == 10.0
