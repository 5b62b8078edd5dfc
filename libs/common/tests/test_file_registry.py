"""FileSchemaRegistry: fingerprint ids every process agrees on, extra schemas, and a shared store file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from kestrel.common.avro import load_schema, read_schema
from kestrel.common.errors import SchemaNotFoundError, SchemaRegistryError
from kestrel.common.registry import FileSchemaRegistry, find_schemas_dir, fingerprint_id, subject_for

LABEL_V2 = {
    **read_schema("label"),
    "fields": [*read_schema("label")["fields"], {"name": "note", "type": "string", "default": ""}],
}


def test_fingerprint_is_sha256_of_the_parsing_canonical_form():
    canonical = '{"name":"x.A","type":"record","fields":[{"name":"n","type":"long"}]}'
    expected = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:4], "big") & 0x7FFFFFFF
    schema = {
        "type": "record",
        "name": "A",
        "namespace": "x",
        "doc": "ignored",
        "fields": [{"name": "n", "type": {"type": "long", "logicalType": "timestamp-millis"}}],
    }
    assert fingerprint_id(schema) == fingerprint_id(json.dumps(schema)) == expected


def test_every_schema_file_is_registered_with_distinct_ids():
    subjects = FileSchemaRegistry().subjects()
    assert "kestrel.v1.Event" in subjects
    ids = [schema_id for ids in subjects.values() for schema_id in ids]
    assert len(ids) == len(set(ids)) == len(list(find_schemas_dir().glob("*.avsc")))


def test_independent_registries_agree_without_talking():
    first, second = FileSchemaRegistry(), FileSchemaRegistry()
    schema_id = first.register(subject_for("kestrel.events.v1"), load_schema("event"))
    assert second.id_for("anything", load_schema("event")) == schema_id
    assert second.get_by_id(schema_id)["name"] == "kestrel.v1.Event"


def test_unknown_id_and_schema():
    registry = FileSchemaRegistry()
    with pytest.raises(SchemaNotFoundError, match="unknown schema id 7"):
        registry.get_by_id(7)
    with pytest.raises(SchemaNotFoundError):
        registry.id_for("t-value", LABEL_V2)


def test_extra_schemas_let_readers_decode_older_versions():
    registry = FileSchemaRegistry(extra=[LABEL_V2])
    assert registry.get_by_id(fingerprint_id(LABEL_V2))["name"] == "kestrel.v1.Label"


def test_schemas_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "label.avsc").write_text(json.dumps(LABEL_V2))
    monkeypatch.setenv("KESTREL_SCHEMAS_DIR", str(tmp_path))
    assert find_schemas_dir() == tmp_path
    assert FileSchemaRegistry().subjects() == {"kestrel.v1.Label": [fingerprint_id(LABEL_V2)]}


def test_id_collision_is_refused(monkeypatch):
    registry = FileSchemaRegistry()
    monkeypatch.setattr("kestrel.common.registry.fingerprint_id", lambda schema: 1)
    registry.register("a-value", load_schema("label"))
    with pytest.raises(SchemaRegistryError, match="collision"):
        registry.register("b-value", load_schema("alert"))


def test_store_shares_registrations_between_instances(tmp_path):
    store = tmp_path / "registry.json"
    producer, consumer = FileSchemaRegistry(store=store), FileSchemaRegistry(store=store)
    schema_id = producer.register("kestrel.labels.v1-value", LABEL_V2)
    assert consumer.get_by_id(schema_id)["name"] == "kestrel.v1.Label"  # picked up on the miss
    assert FileSchemaRegistry(store=store).subjects()["kestrel.labels.v1-value"] == [schema_id]


_CHILD = """
import json, sys
from pathlib import Path
from kestrel.common.registry import FileSchemaRegistry
schema = json.loads(sys.argv[2])
print(FileSchemaRegistry(store=Path(sys.argv[1])).register("kestrel.labels.v1-value", schema))
"""


def test_concurrent_processes_do_not_lose_registrations(tmp_path):
    store = str(tmp_path / "registry.json")
    fields = LABEL_V2["fields"][:-1]
    schemas = [{**LABEL_V2, "fields": [*fields, {"name": f"n{i}", "type": "int", "default": 0}]} for i in range(6)]
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, store, json.dumps(schema)], stdout=subprocess.PIPE, text=True)
        for schema in schemas
    ]
    ids = [int(child.communicate(timeout=60)[0]) for child in children]
    assert sorted(FileSchemaRegistry(store=store).subjects()["kestrel.labels.v1-value"]) == sorted(ids)
