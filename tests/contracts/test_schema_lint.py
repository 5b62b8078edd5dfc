"""House rules for schemas/: names, namespace, docs, timestamp types, and the topic catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILES = sorted((ROOT / "schemas").glob("*.avsc"))
TIMESTAMP_NAME = re.compile(r"(_at|_time|^at|^window_start|^window_end)$")


def _records(schema: Any) -> list[dict[str, Any]]:
    """Every record definition in a schema, nested ones included."""
    if isinstance(schema, list):
        return [r for branch in schema for r in _records(branch)]
    if not isinstance(schema, dict):
        return []
    found = [schema] if schema.get("type") == "record" else []
    for field in schema.get("fields", []):
        found += _records(field["type"])
    return found + _records(schema.get("items")) + _records(schema.get("values"))


def _non_null(field_type: Any) -> Any:
    branches = [b for b in field_type if b != "null"] if isinstance(field_type, list) else [field_type]
    return branches[0] if len(branches) == 1 else field_type


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_top_level_record_is_named_after_file(path):
    schema = json.loads(path.read_text())
    assert schema["namespace"] == "kestrel.v1"
    assert schema["name"] == "".join(part.title() for part in path.stem.split("_"))


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_every_record_and_field_has_a_doc(path):
    for record in _records(json.loads(path.read_text())):
        assert record.get("doc"), f"{record['name']} has no doc"
        undocumented = [f["name"] for f in record["fields"] if not f.get("doc")]
        assert not undocumented, f"{record['name']} fields without doc: {undocumented}"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_timestamps_are_timestamp_millis(path):
    for record in _records(json.loads(path.read_text())):
        for field in record["fields"]:
            if TIMESTAMP_NAME.search(field["name"]):
                assert _non_null(field["type"]) == {"type": "long", "logicalType": "timestamp-millis"}, (
                    f"{record['name']}.{field['name']} must be a timestamp-millis long"
                )


def test_catalogue_schemas_exist():
    """Every value schema named in docs/CONVENTIONS.md's topic catalogue is a file in schemas/."""
    conventions = (ROOT / "docs" / "CONVENTIONS.md").read_text()
    named = set(re.findall(r"\|\s*([a-z_]+\.avsc)", conventions))
    assert named, "topic catalogue not found in docs/CONVENTIONS.md"
    assert named <= {p.name for p in SCHEMA_FILES}
