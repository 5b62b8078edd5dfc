"""Hypothesis strategies for bad input on Kestrel's wire contracts: protobuf requests and Confluent-framed Avro."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import strategies as st

from kestrel.api.v1 import event_pb2, inference_pb2
from kestrel.common.avro import AvroSerde, frame_header, read_schema

NOW_MS = int(time.time() * 1000)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
UNKNOWN_SCHEMA_ID = 0x7FFF_FFF0

# Text a careful client never sends but a careless one will: nothing here is a lone surrogate, which neither
# protobuf nor Avro strings can carry (both are UTF-8), so those fail in the client, not in a service.
EDGE_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u0301",  # a lone combining mark
    "\u202eRUE",  # right-to-left override
    "שלום",
    "\U0001f4b3\U0001f9d1\u200d\U0001f4bb",  # 4-byte emoji and a ZWJ sequence
    "\ufeff",
    "\uffff",
    "e-1\n",
    "'; DROP TABLE predictions; --",
    "x" * 129,
    "\u00e9" * 70_000,  # huge: 140 kB of UTF-8
)
EDGE_FLOATS = (float("nan"), float("inf"), float("-inf"), -0.0, -1.0, 1e9 + 1, 1e308, 5e-324)
EDGE_MS = (LONG_MIN, -1, 0, 1, 946_684_799_999, NOW_MS + 86_400_000 * 365 * 100, 253_402_300_800_000, LONG_MAX)

text = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=40))
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=True, allow_infinity=True))
millis = st.one_of(st.sampled_from(EDGE_MS), st.integers(LONG_MIN, LONG_MAX))


def valid_event(n: int = 0, entity: str = "card-1", t_ms: int | None = None) -> dict[str, Any]:
    """An Avro-shaped event every service accepts: the baseline a fuzzed one is bent from."""
    return {
        "event_id": f"e-fuzz-{n}",
        "entity_id": entity,
        "event_time": NOW_MS - 60_000 if t_ms is None else t_ms,
        "amount": 12.5,
        "currency": "EUR",
        "merchant_id": "m-1",
        "merchant_category": "5411",
        "country": "DE",
        "channel": "web",
        "attributes": {},
    }


# --- protobuf -------------------------------------------------------------------------------------------------

_EVENT_TEXT_FIELDS = ("event_id", "entity_id", "currency", "merchant_id", "merchant_category", "country", "channel")


@st.composite
def events(draw: st.DrawFn) -> event_pb2.Event:
    """A protobuf Event with some fields bent: odd text, NaN and infinite amounts, times out of range, odd maps."""
    record = valid_event(draw(st.integers(0, 50)), entity=f"card-{draw(st.integers(0, 5))}")
    event = event_pb2.Event(**{k: record[k] for k in (*_EVENT_TEXT_FIELDS, "amount")})
    bent = draw(st.sets(st.sampled_from((*_EVENT_TEXT_FIELDS, "amount", "event_time", "attributes")), max_size=4))
    for name in bent & set(_EVENT_TEXT_FIELDS):
        setattr(event, name, draw(text))
    if "amount" in bent:
        event.amount = draw(floats)
    seconds, nanos = record["event_time"] // 1000, 0
    if "event_time" in bent:
        seconds = draw(
            st.one_of(st.sampled_from((LONG_MIN, -1, 0, 253_402_300_800, LONG_MAX)), st.integers(-(2**40), 2**40))
        )
        nanos = draw(st.sampled_from((0, -1, 999_999_999, 1_000_000_000, -(2**31), 2**31 - 1)))
    event.event_time.seconds, event.event_time.nanos = seconds, nanos
    if "attributes" in bent:
        event.attributes.update(draw(st.dictionaries(text, text, max_size=40)))
    return event


@st.composite
def predict_requests(draw: st.DrawFn) -> inference_pb2.PredictRequest:
    """A PredictRequest around a bent event, sometimes without one, with odd entity and request ids."""
    request = inference_pb2.PredictRequest(request_id=draw(text))
    if draw(st.integers(0, 9)):
        request.event.CopyFrom(draw(events()))
    if draw(st.booleans()):
        request.entity_id = draw(st.one_of(text, st.just(request.event.entity_id)))
    return request


def undecodable_messages() -> st.SearchStrategy[bytes]:
    """Bytes that are no protobuf message of the method's type: wrong wire types, truncation, random bytes."""
    wrong_type = st.sampled_from(
        (
            b"\x0a\x05\x0d\x00\x00\x80\x7f",  # event: a length-delimited field holding a fixed32 where a string is
            b"\x0a\x02\x22\x10",  # event.amount as a 16-byte string, cut short
            b"\x0a\x10",  # a field announcing 16 bytes and ending
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a varint tag beyond ten bytes
            b"\x0f",  # wire type 7 does not exist
        )
    )
    return st.one_of(wrong_type, st.binary(min_size=1, max_size=64))


# --- Avro -----------------------------------------------------------------------------------------------------


def avro_values(schema: Any, named: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values that fit an Avro schema (raw JSON) in type but not in sense: the serializer takes them all."""
    named = {} if named is None else named
    if isinstance(schema, str):
        return named[schema] if schema in named else _primitive(schema)
    if isinstance(schema, list):
        return st.one_of([avro_values(branch, named) for branch in schema])
    kind = schema["type"]
    if kind == "record":
        fields = {f["name"]: st.deferred(lambda f=f: avro_values(f["type"], named)) for f in schema["fields"]}
        named[schema["name"]] = named[schema.get("namespace", "") + "." + schema["name"]] = st.fixed_dictionaries(
            fields
        )
        return named[schema["name"]]
    if kind == "map":
        return st.dictionaries(text, avro_values(schema["values"], named), max_size=5)
    if kind == "array":
        return st.lists(avro_values(schema["items"], named), max_size=5)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    return _primitive(kind)


def _primitive(kind: str) -> st.SearchStrategy[Any]:
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.one_of(st.sampled_from((-(2**31), -1, 0, 2**31 - 1)), st.integers(-(2**31), 2**31 - 1)),
        "long": millis,
        "float": floats,
        "double": floats,
        "string": text,
        "bytes": st.one_of(st.just(b""), st.binary(max_size=32)),
    }[kind]


def bent_records(schema_name: str, base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid record with one to three fields bent to odd values of their type: it passes every identity check
    and reaches deep into the consumer (NaN scores, far times, huge ids, NUL in names)."""
    fields = {f["name"]: f["type"] for f in read_schema(schema_name)["fields"]}

    @st.composite
    def bend(draw: st.DrawFn) -> dict[str, Any]:
        names = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True))
        return base | {name: draw(avro_values(fields[name])) for name in names}

    return bend()


def frames(
    serde: AvroSerde, schema_name: str, foreign: AvroSerde, foreign_name: str, base: dict[str, Any] | None = None
) -> st.SearchStrategy[bytes | None]:
    """Values for a topic: records of its schema with odd contents (and, given a valid `base`, that record with a
    few fields bent), another schema's record, truncated frames, wrong magic byte, unknown schema id, empty and
    null values, random bytes."""
    records = avro_values(read_schema(schema_name)).map(serde.serialize)
    foreign_records = avro_values(read_schema(foreign_name)).map(foreign.serialize)
    bent = bent_records(schema_name, base).map(serde.serialize) if base else records
    return st.one_of(
        records,
        bent,
        bent,  # twice the weight: these are the ones that get past decoding
        foreign_records,  # another type's record, under its own (registered, so known) schema id
        foreign_records.map(lambda b: frame_header(serde.schema_id) + b[5:]),  # another type under this topic's id
        records.flatmap(lambda b: st.integers(0, len(b) - 1).map(lambda n: b[:n])),  # truncated
        records.map(lambda b: b"\x01" + b[1:]),  # wrong magic byte
        records.map(lambda b: frame_header(UNKNOWN_SCHEMA_ID) + b[5:]),
        st.sampled_from((b"", None)),
        st.binary(min_size=1, max_size=64),
    )


keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=16), text.map(lambda s: s.encode()))
