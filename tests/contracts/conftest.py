"""Contract-test helpers: where the contracts live, and Hypothesis records for any Avro schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import strategies as st

from kestrel.common.registry import raw_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"


def records_for(schema: Any) -> st.SearchStrategy[Any]:
    """Valid values for a schema, drawing every union branch, empty and non-empty containers."""
    return _values(fastavro.parse_schema(raw_schema(schema), expand=True))


def _values(schema: Any) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([_values(branch) for branch in schema])
    kind = schema if isinstance(schema, str) else schema["type"]
    if not isinstance(kind, str):  # {"type": {...}} wrapper
        return _values(kind)
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: _values(f["type"]) for f in schema["fields"]})
    if kind == "array":
        return st.lists(_values(schema["items"]), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _values(schema["values"]), max_size=4)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    raise ValueError(f"no strategy for Avro type {kind!r}")


# NaN is left out because NaN != NaN would make round-trip equality meaningless.
_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "string": st.text(max_size=16),
    "bytes": st.binary(max_size=16),
}


@pytest.fixture(scope="session")
def avro_records():
    """records_for as a fixture (test modules cannot import each other under --import-mode=importlib)."""
    return records_for


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    return SCHEMAS_DIR
