"""The hand-built FeatureVector encoder writes exactly what fastavro writes, for any names and values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.errors import SerializationError
from kestrel.common.registry import FileSchemaRegistry
from kestrel.featureset.wire import PredictionEncoder, VectorDecoder, VectorEncoder, zigzag, zigzag_many

SERDE = AvroSerde(FileSchemaRegistry(), "t-value", load_schema("feature_vector"))
LONG = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=30)
FLOAT = st.floats(allow_nan=False)


@given(
    names=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=40, unique=True),
    data=st.data(),
    entity=st.text(max_size=30),
    event_id=st.text(max_size=40),
    event_time=LONG,
    at=LONG,
)
def test_bytes_match_fastavro(
    names: list[str], data: st.DataObject, entity: str, event_id: str, event_time: int, at: int
) -> None:
    values = data.draw(st.lists(st.floats(allow_nan=False), min_size=len(names), max_size=len(names)))
    categories = data.draw(st.dictionaries(st.text(min_size=1, max_size=12).map(lambda k: "c" + k), TEXT, max_size=4))
    numbers = data.draw(st.dictionaries(st.text(min_size=1, max_size=12).map(lambda k: "n" + k), FLOAT, max_size=3))
    retention, cap = (data.draw(st.integers(1, 2**40)), data.draw(st.integers(1, 2**31 - 1)))
    logged = data.draw(st.booleans())
    encoder = VectorEncoder(SERDE, names, "card.v9", list(categories), list(numbers), retention, cap)
    event = {**categories, **numbers} if logged else None
    encoded = encoder.encode(entity, event_id, event_time, values, at, event)
    part = (categories, numbers, retention, cap) if logged and (categories or numbers) else ({}, {}, 0, 0)
    expected = SERDE.serialize(
        {
            "entity_id": entity,
            "event_id": event_id,
            "event_time": event_time,
            "feature_set_version": "card.v9",
            "features": {},
            "feature_values": values,
            "computed_at": at,
            "categories": part[0],
            "category_window_ms": 0,
            "numbers": part[1],
            "log_retention_ms": part[2],
            "log_cap": part[3],
        }
    )
    assert encoded == expected
    decoded = SERDE.deserialize(encoded)
    assert decoded["feature_values"] == values and decoded["categories"] == part[0]
    batch = VectorDecoder(SERDE, len(names)).decode_batch([encoded])
    assert batch[:5] == ([0], [entity], [event_id], [event_time], ["card.v9"])
    assert batch.values.tolist() == [values]


def test_encoder_for_a_feature_set_carries_the_event_as_the_log_keeps_it() -> None:
    from kestrel.featureset import load_feature_set

    card = load_feature_set("card")
    assert card.categorical_sources == ["channel", "country", "merchant_category", "merchant_id"]
    assert card.numeric_sources == ["amount"]
    event = {"merchant_id": "m-1", "country": "DE", "merchant_category": "5411", "channel": "pos", "amount": 1.5}
    values = [0.0] * len(card.names)
    decoded = SERDE.deserialize(VectorEncoder.for_feature_set(SERDE, card).encode("c", "e", 1, values, 2, event))
    assert decoded["categories"] == {k: v for k, v in event.items() if k != "amount"}
    assert decoded["numbers"] == {"amount": 1.5}
    assert decoded["log_retention_ms"] == (86_400 + 300) * 1000 and decoded["log_cap"] == 4096
    assert decoded["category_window_ms"] == 0


@given(LONG)
def test_zigzag_round_trips_through_avro(n: int) -> None:
    import io

    from fastavro.io.binary_decoder import BinaryDecoder

    assert BinaryDecoder(io.BytesIO(zigzag(n))).read_long() == n


@given(st.lists(LONG, max_size=80))
def test_zigzag_many_encodes_as_zigzag(values: list[int]) -> None:
    """Short columns go value by value, long ones as arrays: both must be zigzag()."""
    assert zigzag_many(values) == [zigzag(n) for n in values]
    assert zigzag_many(values * 40) == [zigzag(n) for n in values] * 40


def test_wrong_length_and_wrong_serde_are_refused() -> None:
    with pytest.raises(SerializationError, match="2 values"):
        VectorEncoder(SERDE, ["a"], "v").encode("e", "i", 0, [1.0, 2.0], 0)
    with pytest.raises(ValueError, match="FeatureVector"):
        VectorEncoder(AvroSerde(FileSchemaRegistry(), "x", load_schema("event")), ["a"], "v")


PREDICTIONS = AvroSerde(FileSchemaRegistry(), "t-predictions", load_schema("prediction"))


@given(
    names=st.lists(st.text(min_size=1, max_size=12), min_size=0, max_size=30, unique=True),
    data=st.data(),
    ids=st.tuples(TEXT, TEXT, TEXT),
    times=st.tuples(LONG, LONG, LONG, LONG),
    flags=st.lists(TEXT, max_size=4),
    decision=st.booleans(),
    degraded=st.booleans(),
    strings=st.tuples(TEXT, TEXT, TEXT, TEXT),
    numbers=st.tuples(st.floats(allow_nan=False), st.floats(allow_nan=False)),
)
def test_prediction_bytes_match_fastavro(names, data, ids, times, flags, decision, degraded, strings, numbers) -> None:
    values = data.draw(st.lists(st.floats(allow_nan=False), min_size=len(names), max_size=len(names)))
    record = {
        "prediction_id": ids[0],
        "event_id": ids[1],
        "entity_id": ids[2],
        "event_time": times[0],
        "model_name": strings[0],
        "model_version": strings[1],
        "score": numbers[0],
        "threshold": numbers[1],
        "decision": decision,
        "feature_set_version": strings[2],
        "features": {},
        "feature_values": values,
        "features_age_ms": times[1],
        "degraded": degraded,
        "flags": flags,
        "latency_us": times[2],
        "source": strings[3],
        "predicted_at": times[3],
    }
    encoded = PredictionEncoder(PREDICTIONS, names).encode_record(record, names)
    assert encoded == PREDICTIONS.serialize(record)


@given(
    size=st.integers(0, 40),
    data=st.data(),
    entity=TEXT,
    event_id=TEXT,
    event_time=LONG,
    at=LONG,
)
def test_vector_decoder_reads_what_fastavro_writes(size, data, entity, event_id, event_time, at):
    values = data.draw(st.lists(st.floats(allow_nan=False), min_size=size, max_size=size))
    record = {
        "entity_id": entity,
        "event_id": event_id,
        "event_time": event_time,
        "feature_set_version": "card.v9",
        "features": {},
        "feature_values": values,
        "computed_at": at,
        "categories": data.draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        "numbers": data.draw(st.dictionaries(TEXT, FLOAT, max_size=3)),
    }
    decoded = VectorDecoder(SERDE, size).decode_batch([SERDE.serialize(record)] * 2)
    assert decoded[:5] == ([0, 1], [entity] * 2, [event_id] * 2, [event_time] * 2, ["card.v9"] * 2)
    assert decoded.values.shape == (2, size) and decoded.values.tolist() == [values] * 2


def test_vector_decoder_declines_what_it_cannot_read_exactly() -> None:
    decoder = VectorDecoder(SERDE, 3)
    base = {"entity_id": "e", "event_id": "i", "event_time": 5, "feature_set_version": "v", "computed_at": 6}
    good = SERDE.serialize({**base, "feature_values": [1.0, 2.0, 3.0]})
    by_name = SERDE.serialize({**base, "features": {"a": 1.0, "b": 2.0, "c": 3.0}})  # an older writer's
    other = AvroSerde(FileSchemaRegistry(), "t-other", load_schema("event"))
    declined = [
        by_name,
        SERDE.serialize({**base, "features": {"a": 1.0}, "feature_values": [1.0, 2.0, 3.0]}),  # both
        SERDE.serialize({**base, "feature_values": [1.0, 2.0]}),  # another size
        good[:-1],  # truncated
        good + b"\x00",  # trailing
        b"\x00" + (other.schema_id + 1).to_bytes(4, "big") + good[5:],  # another schema id
    ]
    decoded = decoder.decode_batch([*declined, good])
    assert decoded.positions == [len(declined)] and decoded.values.tolist() == [[1.0, 2.0, 3.0]]
    assert decoder.decode_batch(declined).values.shape == (0, 3)


def test_prediction_batch_encodes_as_each_record_does() -> None:
    names = ["a", "b"]
    encoder = PredictionEncoder(PREDICTIONS, names)
    shared = {"model_name": "m", "threshold": 0.5, "feature_set_version": "card.v9", "latency_us": 7}
    shared |= {"source": "stream", "predicted_at": 99}
    rows = [
        ("p0", "e0", "c0", 1, "3", 0.25, False, [1.0, 2.0], 40),
        ("p1", "e1", "c1", 2, "4", 0.75, True, [3.0, 4.0], 0),
    ]
    singles = [
        encoder.encode(
            prediction_id=p,
            event_id=e,
            entity_id=c,
            event_time=t,
            model_version=v,
            score=sc,
            decision=d,
            features=f,
            features_age_ms=age,
            degraded=False,
            flags=[],
            **shared,
        )
        for p, e, c, t, v, sc, d, f, age in rows
    ]
    columns = list(zip(*rows))
    batch = encoder.encode_batch(
        prediction_ids=columns[0],
        event_ids=columns[1],
        entity_ids=columns[2],
        event_times=columns[3],
        model_versions=columns[4],
        scores=columns[5],
        decisions=columns[6],
        features=np.array(columns[7]),
        features_age_ms=columns[8],
        **shared,
    )
    assert batch == singles
    assert PREDICTIONS.deserialize(batch[1])["feature_values"] == [3.0, 4.0]


def test_vector_decoder_declines_a_tombstone_and_empty_values() -> None:
    """A record without a value (a tombstone) failed the whole batch, valid vectors too (found by tests/fuzz)."""
    decoder = VectorDecoder(SERDE, 1)
    base = {"entity_id": "e", "event_id": "i", "event_time": 5, "feature_set_version": "v", "computed_at": 6}
    good = SERDE.serialize({**base, "feature_values": [1.0]})
    decoded = decoder.decode_batch([None, b"", good])
    assert decoded.positions == [2] and decoded.values.tolist() == [[1.0]]
