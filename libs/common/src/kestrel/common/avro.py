"""Avro serde with Confluent framing (magic byte 0, 4-byte big-endian schema id, Avro body)."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

import fastavro
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from kestrel.common.errors import SchemaNotFoundError, SerializationError
from kestrel.common.registry import Schema, SchemaRegistry, find_schemas_dir, parse_record, raw_schema

MAGIC = 0
HEADER = struct.Struct(">bI")
"""Confluent frame header: magic byte, then the schema id as a big-endian unsigned 32-bit int."""


def frame_header(schema_id: int) -> bytes:
    """The 5 bytes that precede every Confluent-framed Avro body written with this schema id."""
    return HEADER.pack(MAGIC, schema_id)


def read_schema(name: str, schemas_dir: Path | str | None = None) -> dict[str, Any]:
    """The raw JSON of schemas/<name>.avsc (name with or without the .avsc suffix)."""
    directory = Path(schemas_dir) if schemas_dir else find_schemas_dir()
    path = directory / (name if name.endswith(".avsc") else f"{name}.avsc")
    if not path.is_file():
        raise SchemaNotFoundError(f"no schema {path.name} in {directory}")
    raw: dict[str, Any] = json.loads(path.read_text())
    return raw


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The fastavro-parsed schema of schemas/<name>.avsc, e.g. load_schema("event").

    Cached and shared between callers: treat it as read-only.
    """
    return parse_record(read_schema(name))


def plain_schema(schema: Schema) -> dict[str, Any]:
    """Parse a schema with logical types removed, so timestamp-millis decodes to int milliseconds.

    fastavro converts by the *writer's* logical types, so decoding with these plain schemas keeps
    the decoded form identical whichever schema version wrote the data, and skips datetime objects.
    """
    return parse_record(_drop_logical_types(raw_schema(schema)))


def _drop_logical_types(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _drop_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_drop_logical_types(item) for item in node]
    return node


class AvroSerde:
    """Encodes and decodes one record type on one subject.

    serialize() accepts timestamps as int milliseconds or aware datetimes; deserialize() always
    returns int milliseconds. Readers resolve older (or newer) writer schemas to their own schema,
    so added fields with defaults appear and removed fields vanish.
    """

    def __init__(self, registry: SchemaRegistry, subject: str, schema: Schema) -> None:
        self.registry = registry
        self.subject = subject
        self._raw = raw_schema(schema)
        self.schema = parse_record(self._raw)
        self._reader = plain_schema(self._raw)
        self._canonical = to_parsing_canonical_form(self._raw)
        self._schema_id: int | None = None
        self._header = b""
        # writer schema id -> (plain writer schema, reader schema or None when no resolution is needed)
        self._decoders: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}

    @property
    def schema_id(self) -> int:
        """Our schema's id, registered on first use (a blocking call for HTTP registries)."""
        if self._schema_id is None:
            self._schema_id = self.registry.register(self.subject, self._raw)
            self._header = frame_header(self._schema_id)
            self._decoders[self._schema_id] = (self._reader, None)
        return self._schema_id

    async def aprepare(self) -> None:
        """Register our schema off the event loop; call at start-up in async services."""
        await asyncio.to_thread(lambda: self.schema_id)

    def serialize(self, record: Mapping[str, Any]) -> bytes:
        """Frame and encode one record; SerializationError if it does not fit the schema."""
        buf = io.BytesIO()
        buf.write(self._header if self._schema_id is not None else frame_header(self.schema_id))
        self._write(buf, record)
        return buf.getvalue()

    def serialize_many(self, records: Iterable[Mapping[str, Any]]) -> list[bytes]:
        """Encode several records into one shared buffer, then slice it (one buffer, not one per record)."""
        header = frame_header(self.schema_id)
        buf, bounds = io.BytesIO(), []
        for record in records:
            start = buf.tell()
            buf.write(header)
            self._write(buf, record)
            bounds.append((start, buf.tell()))
        view = buf.getbuffer()
        try:
            return [bytes(view[start:end]) for start, end in bounds]
        finally:
            view.release()

    def deserialize(self, data: bytes) -> dict[str, Any]:
        """Decode one framed payload; SerializationError when the bytes are not a valid record.

        Registry outages surface as SchemaRegistryError (retry, do not dead-letter).
        """
        if data is None or len(data) < HEADER.size:
            size = 0 if data is None else len(data)
            raise SerializationError(f"payload of {size} bytes is shorter than the {HEADER.size}-byte header")
        magic, schema_id = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise SerializationError(f"bad magic byte {magic}, expected {MAGIC} (not Confluent-framed Avro)")
        writer, reader = self._decoders.get(schema_id) or self._decoder(schema_id)
        buf = io.BytesIO(data)
        buf.seek(HEADER.size)
        try:
            record = schemaless_reader(buf, writer, reader)
        except Exception as exc:  # fastavro raises many types on corrupt input; all mean bad data
            raise SerializationError(
                f"Avro decode failed with schema id {schema_id}: {type(exc).__name__}: {exc}", schema_id=schema_id
            ) from exc
        if buf.tell() != len(data):
            raise SerializationError(
                f"{len(data) - buf.tell()} trailing bytes after the record (schema id {schema_id})", schema_id=schema_id
            )
        if not isinstance(record, dict):
            raise SerializationError(f"schema id {schema_id} is not a record schema", schema_id=schema_id)
        return record

    def deserialize_many(self, payloads: Sequence[bytes], *, errors: Literal["raise", "return"] = "raise") -> list[Any]:
        """Decode several payloads, resolving each writer schema once per serde.

        With errors="return" a bad payload yields its SerializationError in its place, so a batch
        consumer can dead-letter it and keep the rest of the batch.
        """
        out: list[Any] = []
        for data in payloads:
            try:
                out.append(self.deserialize(data))
            except SerializationError as exc:
                if errors == "raise":
                    raise
                out.append(exc)
        return out

    def _write(self, buf: io.BytesIO, record: Mapping[str, Any]) -> None:
        try:
            schemaless_writer(buf, self.schema, record)
        except Exception as exc:  # fastavro raises ValueError/TypeError/KeyError/...: all mean bad data
            raise SerializationError(
                f"record does not match {self.schema['name']}: {type(exc).__name__}: {exc}"
            ) from exc

    def _decoder(self, schema_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if schema_id == self._schema_id:
            pair: tuple[dict[str, Any], dict[str, Any] | None] = (self._reader, None)
        else:
            try:
                writer = self.registry.get_by_id(schema_id)
            except SchemaNotFoundError as exc:
                reason = f"unknown schema id {schema_id}: {exc}"
                raise SerializationError(reason, schema_id=schema_id) from exc
            # Same canonical form means same bytes on the wire: skip fastavro's schema resolution.
            same = to_parsing_canonical_form(raw_schema(writer)) == self._canonical
            pair = (self._reader, None) if same else (plain_schema(writer), self._reader)
        self._decoders[schema_id] = pair
        return pair


# Avro's legal writer -> reader promotions (spec, "Schema Resolution").
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
_NAMED = {"record", "enum", "fixed"}


def check_backward_compatible(old: Schema, new: Schema) -> list[str]:
    """Why readers using `new` could not read data written with `old`; empty when they can.

    Follows Avro schema resolution (added fields need defaults, removed fields are fine, only the
    spec's promotions are allowed), and is stricter in one way: a changed logical type is reported,
    because the same bytes would then mean something else (e.g. millis read as micros).
    """
    writer = fastavro.parse_schema(raw_schema(old), expand=True)
    try:
        reader = fastavro.parse_schema(raw_schema(new), expand=True)
    except Exception as exc:  # noqa: BLE001 - fastavro's SchemaParseException, or ValueError/TypeError on odd JSON
        return [f"new schema is invalid: {exc}"]
    name = reader.get("name", "") if isinstance(reader, dict) else ""
    return _compare(writer, reader, _short(name), set())


def _compare(writer: Any, reader: Any, path: str, seen: set[tuple[str, str]]) -> list[str]:
    if isinstance(writer, list):  # every branch the writer may have used must stay readable
        return [problem for branch in writer for problem in _compare(branch, reader, path, seen)]
    if isinstance(reader, list):
        branch = _union_branch(writer, reader)
        if branch is None:
            return [
                f"{path}: no branch of the new union {[_label(b) for b in reader]} "
                f"can read the old type {_label(writer)}"
            ]
        return _compare(writer, branch, path, seen)
    w_type, r_type = _type_of(writer), _type_of(reader)
    if w_type != r_type:
        if r_type in _PROMOTIONS.get(w_type, ()):
            return []
        return [f"{path}: type changed from {_label(writer)} to {_label(reader)}, which is not a valid Avro promotion"]
    if _logical(writer) != _logical(reader):
        return [f"{path}: logical type changed from {_logical(writer)} to {_logical(reader)}"]
    if w_type in _NAMED and not _names_match(writer, reader):
        return [f"{path}: named type changed from {writer['name']} to {reader['name']}"]
    if w_type == "record":
        return _compare_records(writer, reader, path, seen)
    if w_type == "enum":
        return _compare_enums(writer, reader, path)
    if w_type == "fixed" and writer["size"] != reader["size"]:
        return [f"{path}: fixed size changed from {writer['size']} to {reader['size']}"]
    if w_type == "array":
        return _compare(writer["items"], reader["items"], f"{path}[]", seen)
    if w_type == "map":
        return _compare(writer["values"], reader["values"], f"{path}{{}}", seen)
    return []


def _compare_records(writer: Any, reader: Any, path: str, seen: set[tuple[str, str]]) -> list[str]:
    key = (writer["name"], reader["name"])
    if key in seen:  # recursive types: this pair is already being compared further up
        return []
    seen = seen | {key}
    old_fields = {field["name"]: field for field in writer["fields"]}
    problems: list[str] = []
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        match = next((old_fields[name] for name in names if name in old_fields), None)
        if match is not None:
            problems += _compare(match["type"], field["type"], f"{path}.{field['name']}", seen)
        elif "default" not in field:
            problems.append(f"{path}.{field['name']}: field added without a default, so old records cannot fill it")
    return problems


def _compare_enums(writer: Any, reader: Any, path: str) -> list[str]:
    missing = [symbol for symbol in writer["symbols"] if symbol not in reader["symbols"]]
    if missing and "default" not in reader:
        return [f"{path}: enum symbols {missing} removed and the new enum has no default"]
    return []


def _union_branch(writer: Any, branches: list[Any]) -> Any:
    """The reader branch Avro picks for a writer type: an exact match first, then a promotion."""
    w_type = _type_of(writer)
    exact = [b for b in branches if _type_of(b) == w_type and (w_type not in _NAMED or _names_match(writer, b))]
    promoted = [b for b in branches if _type_of(b) in _PROMOTIONS.get(w_type, ())]
    return (exact or promoted or [None])[0]


def _type_of(schema: Any) -> str:
    return schema if isinstance(schema, str) else schema["type"]


def _logical(schema: Any) -> str | None:
    return schema.get("logicalType") if isinstance(schema, Mapping) else None


def _names_match(writer: Any, reader: Any) -> bool:
    names = {_short(reader["name"]), *(_short(alias) for alias in reader.get("aliases", []))}
    return _short(writer["name"]) in names


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _label(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    name = schema.get("name") if schema["type"] in _NAMED else None
    return str(name or schema.get("logicalType") or schema["type"])
