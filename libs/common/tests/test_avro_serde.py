"""AvroSerde: Confluent framing, round trips, schema evolution both ways, and clear errors on bad bytes."""

from __future__ import annotations

import copy
import datetime as dt
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.common.avro import HEADER, AvroSerde, load_schema
from kestrel.common.errors import SchemaRegistryError, SchemaRegistryUnavailableError, SerializationError
from kestrel.common.registry import FileSchemaRegistry, fingerprint_id

SUBJECT = "kestrel.events.v1-value"
EVENT = {
    "event_id": "e-1",
    "entity_id": "card-1",
    "event_time": 1_700_000_000_123,
    "amount": 42.5,
    "currency": "EUR",
    "merchant_id": "m-9",
    "merchant_category": "5411",
    "country": "DE",
    "channel": "contactless",
    "attributes": {"device": "phone"},
}


@pytest.fixture(scope="module")
def registry():
    return FileSchemaRegistry()


@pytest.fixture(scope="module")
def serde(registry):
    return AvroSerde(registry, SUBJECT, load_schema("event"))


def evolved_event(**field):
    """The Event schema with one extra field appended, as a later version would have it."""
    schema = copy.deepcopy(load_schema("event"))
    schema = {k: v for k, v in schema.items() if not k.startswith("__")}
    schema["fields"] = [*schema["fields"], {"name": "device_id", "type": ["null", "string"], **field}]
    return schema


def test_frame_is_magic_then_big_endian_fingerprint_id(serde):
    data = serde.serialize(EVENT)
    assert data[0] == 0
    assert struct.unpack(">I", data[1:5])[0] == fingerprint_id(load_schema("event")) == serde.schema_id


def test_round_trip(serde):
    assert serde.deserialize(serde.serialize(EVENT)) == EVENT


def test_datetimes_are_accepted_and_read_back_as_millis(serde):
    when = dt.datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    decoded = serde.deserialize(serde.serialize({**EVENT, "event_time": when}))
    assert decoded["event_time"] == int(when.timestamp() * 1000)


def test_missing_attributes_take_the_default(serde):
    record = {k: v for k, v in EVENT.items() if k != "attributes"}
    assert serde.deserialize(serde.serialize(record))["attributes"] == {}


def test_batch_helpers(serde):
    records = [{**EVENT, "event_id": f"e-{i}"} for i in range(50)]
    payloads = serde.serialize_many(records)
    assert payloads == [serde.serialize(r) for r in records]
    assert serde.deserialize_many(payloads) == records


def test_deserialize_many_can_return_errors_in_place(serde):
    good = serde.serialize(EVENT)
    out = serde.deserialize_many([good, b"\x01junk", good], errors="return")
    assert out[0] == out[2] == EVENT
    assert isinstance(out[1], SerializationError)
    with pytest.raises(SerializationError):
        serde.deserialize_many([good, b"\x01junk"])


def test_new_reader_reads_old_writer(registry, serde):
    """Old bytes (current schema) read by a newer schema that added a field with a default."""
    reader = AvroSerde(registry, SUBJECT, evolved_event(default=None))
    assert reader.deserialize(serde.serialize(EVENT)) == {**EVENT, "device_id": None}


def test_old_reader_reads_new_writer_when_it_knows_the_schema(registry, serde):
    """Forward direction: the consumer learns the newer writer schema from the shared registry."""
    writer = AvroSerde(registry, SUBJECT, evolved_event(default=None))
    data = writer.serialize({**EVENT, "device_id": "d-1"})
    assert serde.deserialize(data) == EVENT


def test_unknown_writer_schema_is_a_serialization_error():
    """A consumer whose registry never saw the writer's schema cannot decode: dead-letter, clearly."""
    producer = AvroSerde(FileSchemaRegistry(), SUBJECT, evolved_event(default=None))
    consumer = AvroSerde(FileSchemaRegistry(), SUBJECT, load_schema("event"))
    with pytest.raises(SerializationError, match="unknown schema id") as caught:
        consumer.deserialize(producer.serialize(EVENT))
    assert caught.value.schema_id == producer.schema_id


def test_record_not_matching_schema(serde):
    with pytest.raises(SerializationError, match="Event"):
        serde.serialize({**EVENT, "amount": "a lot"})
    with pytest.raises(SerializationError):
        serde.serialize({k: v for k, v in EVENT.items() if k != "event_id"})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "shorter than"),
        (b"\x00\x01", "shorter than"),
        (b"\x01" + b"\x00" * 10, "bad magic byte 1"),
        (HEADER.pack(0, 12345) + b"\x02a", "unknown schema id 12345"),
    ],
)
def test_bad_frames(serde, payload, reason):
    with pytest.raises(SerializationError, match=reason):
        serde.deserialize(payload)


def test_truncated_body(serde):
    data = serde.serialize(EVENT)
    with pytest.raises(SerializationError, match="decode failed"):
        serde.deserialize(data[:-8])


def test_trailing_bytes(serde):
    with pytest.raises(SerializationError, match="trailing bytes"):
        serde.deserialize(serde.serialize(EVENT) + b"\x00")


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=80))
def test_garbage_body_never_crashes(serde, body):
    try:
        record = serde.deserialize(HEADER.pack(0, serde.schema_id) + body)
    except SerializationError:
        return
    assert set(record) == set(EVENT)  # garbage that happens to decode must still be a whole Event


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, 200), value=st.integers(0, 255))
def test_flipped_byte_never_crashes(serde, position, value):
    data = bytearray(serde.serialize(EVENT))
    data[position % len(data)] = value
    try:
        serde.deserialize(bytes(data))
    except SerializationError:
        pass


def test_registry_outage_is_not_blamed_on_the_data(serde):
    class DownRegistry:
        def register(self, subject, schema):
            raise SchemaRegistryUnavailableError("registry down")

        def id_for(self, subject, schema):
            raise SchemaRegistryUnavailableError("registry down")

        def get_by_id(self, schema_id):
            raise SchemaRegistryUnavailableError("registry down")

    consumer = AvroSerde(DownRegistry(), SUBJECT, load_schema("event"))
    with pytest.raises(SchemaRegistryError) as caught:
        consumer.deserialize(serde.serialize(EVENT))
    assert not isinstance(caught.value, SerializationError)


async def test_aprepare_registers_off_the_loop(registry):
    serde = AvroSerde(registry, "t-aprepare-value", load_schema("label"))
    await serde.aprepare()
    assert serde.schema_id == fingerprint_id(load_schema("label"))
