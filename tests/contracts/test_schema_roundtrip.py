"""Every schema in schemas/ round-trips generated records through AvroSerde with the file registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.common.avro import AvroSerde
from kestrel.common.registry import FileSchemaRegistry

SCHEMA_FILES = sorted((Path(__file__).resolve().parents[2] / "schemas").glob("*.avsc"))


@pytest.fixture(scope="module")
def registry(schemas_dir):
    return FileSchemaRegistry(schemas_dir)


def test_schemas_exist():
    assert len(SCHEMA_FILES) >= 8


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(path, data, registry, avro_records):
    schema = json.loads(path.read_text())
    serde = AvroSerde(registry, f"t-{path.stem}-value", schema)
    record = data.draw(avro_records(schema))
    assert serde.deserialize(serde.serialize(record)) == record


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_batch_round_trip(path, data, registry, avro_records):
    schema = json.loads(path.read_text())
    serde = AvroSerde(registry, f"t-{path.stem}-value", schema)
    records = data.draw(st.lists(avro_records(schema), max_size=5))
    assert serde.deserialize_many(serde.serialize_many(records)) == records
