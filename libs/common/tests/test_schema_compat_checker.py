"""check_backward_compatible follows Avro resolution rules and explains each problem."""

from __future__ import annotations

import copy

import pytest

from kestrel.common.avro import check_backward_compatible, load_schema

BASE = {
    "type": "record",
    "name": "Thing",
    "namespace": "kestrel.test",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "count", "type": "int"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def changed(field_name, **updates):
    """BASE with one field's definition updated."""
    schema = copy.deepcopy(BASE)
    field = next(f for f in schema["fields"] if f["name"] == field_name)
    field.update(updates)
    return schema


def with_field(**field):
    return {**BASE, "fields": [*BASE["fields"], field]}


def test_identical_schemas_are_compatible():
    assert check_backward_compatible(BASE, BASE) == []


@pytest.mark.parametrize("name", ["event", "prediction", "drift_report", "dead_letter"])
def test_real_schemas_are_compatible_with_themselves(name):
    assert check_backward_compatible(load_schema(name), load_schema(name)) == []


def test_added_field_without_default_is_caught():
    assert check_backward_compatible(BASE, with_field(name="extra", type="string")) == [
        "Thing.extra: field added without a default, so old records cannot fill it"
    ]


def test_added_field_with_default_is_fine():
    assert check_backward_compatible(BASE, with_field(name="extra", type="string", default="")) == []


def test_removed_field_is_fine():
    fewer = {**BASE, "fields": BASE["fields"][1:]}
    assert check_backward_compatible(BASE, fewer) == []


def test_incompatible_type_change_is_caught():
    assert check_backward_compatible(BASE, changed("count", type="string")) == [
        "Thing.count: type changed from int to string, which is not a valid Avro promotion"
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int", "long"),
        ("int", "double"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ],
)
def test_promotions_are_fine(old, new):
    assert check_backward_compatible(changed("count", type=old), changed("count", type=new)) == []


def test_narrowing_is_caught():
    assert check_backward_compatible(changed("count", type="long"), changed("count", type="int"))


def test_nested_types_are_checked():
    problems = check_backward_compatible(BASE, changed("tags", type={"type": "array", "items": "int"}))
    assert problems == ["Thing.tags[]: type changed from string to int, which is not a valid Avro promotion"]


def test_removed_enum_symbol_needs_a_default():
    narrower = changed("kind", type={"type": "enum", "name": "Kind", "symbols": ["A"]})
    assert "enum symbols ['B'] removed" in check_backward_compatible(BASE, narrower)[0]
    defaulted = changed("kind", type={"type": "enum", "name": "Kind", "symbols": ["A"], "default": "A"})
    assert check_backward_compatible(BASE, defaulted) == []


def test_union_changes():
    widened = changed("count", type=["null", "long"], default=None)
    assert check_backward_compatible(BASE, widened) == []
    narrowed = changed("note", type="string", default="")
    assert check_backward_compatible(BASE, narrowed) == [
        "Thing.note: type changed from null to string, which is not a valid Avro promotion"
    ]


def test_renamed_field_needs_an_alias():
    renamed = changed("count", name="total")
    assert "Thing.total: field added without a default" in check_backward_compatible(BASE, renamed)[0]
    aliased = changed("count", name="total", aliases=["count"])
    assert check_backward_compatible(BASE, aliased) == []


def test_changed_logical_type_is_caught():
    micros = changed("at", type={"type": "long", "logicalType": "timestamp-micros"})
    assert check_backward_compatible(BASE, micros) == [
        "Thing.at: logical type changed from timestamp-millis to timestamp-micros"
    ]


def test_invalid_new_schema_is_reported():
    problems = check_backward_compatible(BASE, changed("note", type="string", default=None))
    assert problems and problems[0].startswith("new schema is invalid")


def test_renamed_record_is_caught():
    assert check_backward_compatible(BASE, {**BASE, "name": "Other"}) == [
        "Other: named type changed from kestrel.test.Thing to kestrel.test.Other"
    ]
