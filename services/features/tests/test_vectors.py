"""The hand-built FeatureVector encoder writes exactly what fastavro writes, for any names and values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.errors import SerializationError
from kestrel.common.registry import FileSchemaRegistry
from kestrel.features.vectors import VectorEncoder, zigzag

SERDE = AvroSerde(FileSchemaRegistry(), "t-value", load_schema("feature_vector"))
LONG = st.integers(-(2**63), 2**63 - 1)


@given(names=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=40, unique=True),
       data=st.data(), entity=st.text(max_size=30), event_id=st.text(max_size=40), event_time=LONG, at=LONG)
def test_bytes_match_fastavro(names: list[str], data: st.DataObject, entity: str, event_id: str,
                              event_time: int, at: int) -> None:
    values = data.draw(st.lists(st.floats(allow_nan=False), min_size=len(names), max_size=len(names)))
    encoded = VectorEncoder(SERDE, names, "card.v9").encode(entity, event_id, event_time, values, at)
    expected = SERDE.serialize({"entity_id": entity, "event_id": event_id, "event_time": event_time,
                                "feature_set_version": "card.v9", "features": dict(zip(names, values)),
                                "computed_at": at})
    assert encoded == expected
    assert SERDE.deserialize(encoded)["features"] == dict(zip(names, values))


@given(LONG)
def test_zigzag_round_trips_through_avro(n: int) -> None:
    import io

    from fastavro.io.binary_decoder import BinaryDecoder

    assert BinaryDecoder(io.BytesIO(zigzag(n))).read_long() == n


def test_wrong_length_and_wrong_serde_are_refused() -> None:
    with pytest.raises(SerializationError, match="2 values"):
        VectorEncoder(SERDE, ["a"], "v").encode("e", "i", 0, [1.0, 2.0], 0)
    with pytest.raises(ValueError, match="FeatureVector"):
        VectorEncoder(AvroSerde(FileSchemaRegistry(), "x", load_schema("event")), ["a"], "v")
