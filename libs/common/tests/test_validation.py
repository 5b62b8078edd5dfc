"""Unit tests of the ingest validation rules."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kestrel.common.validation import Limits, validate_event

NOW = 1_760_000_000_000


def good(**overrides):
    event = {
        "event_id": "e-1",
        "entity_id": "card-1",
        "event_time": NOW - 1000,
        "amount": 12.5,
        "currency": "EUR",
        "merchant_id": "m-1",
        "merchant_category": "5411",
        "country": "DE",
        "channel": "ecommerce",
        "attributes": {"device": "ios"},
    }
    event.update(overrides)
    return event


def fields(event, **kw):
    return [v.field for v in validate_event(event, NOW, **kw)]


def test_valid_event_has_no_violations():
    assert validate_event(good(), NOW) == []


@pytest.mark.parametrize(
    ("override", "field", "reason_part"),
    [
        ({"event_id": ""}, "event_id", "required"),
        ({"entity_id": "has space"}, "entity_id", "printable"),
        ({"amount": -1.0}, "amount", ">= 0"),
        ({"amount": math.nan}, "amount", "finite"),
        ({"amount": math.inf}, "amount", "finite"),
        ({"amount": 2e9}, "amount", "<="),
        ({"currency": "eur"}, "currency", "ISO 4217"),
        ({"merchant_category": "54"}, "merchant_category", "MCC"),
        ({"country": "DEU"}, "country", "ISO 3166"),
        ({"channel": "Web Shop"}, "channel", "lowercase"),
        ({"event_time": NOW + 3_600_000}, "event_time", "future"),
        ({"event_time": 1_700_000_000}, "event_time", "2000-01-01"),
        ({"event_time": 0}, "event_time", "required"),
        ({"attributes": {str(i): "x" for i in range(40)}}, "attributes", "at most"),
        ({"attributes": {"k": "x" * 300}}, "attributes['k']", "longer"),
    ],
)
def test_each_rule_names_field_and_reason(override, field, reason_part):
    violations = validate_event(good(**override), NOW)
    assert [v.field for v in violations] == [field]
    assert reason_part in violations[0].reason


def test_all_violations_reported_in_field_order():
    event = good(event_id="", amount=-5.0, country="x")
    assert fields(event) == ["event_id", "amount", "country"]


def test_size_limit():
    assert fields(good(), size=20_000) == ["event"]
    assert fields(good(), size=20_000, limits=Limits(max_event_bytes=32_768)) == []


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_amount_accepted_iff_finite_in_range(amount):
    ok = math.isfinite(amount) and 0 <= amount <= Limits().max_amount
    assert ("amount" not in fields(good(amount=amount))) == ok


@pytest.mark.parametrize(
    "name,value",
    [
        ("event_id", "e-1\n"),
        ("entity_id", "card-1\n"),
        ("currency", "EUR\n"),
        ("country", "DE\n"),
        ("merchant_category", "5411\n"),
        ("channel", "pos\n"),
        ("merchant_id", "m-1\n"),
    ],
)
def test_a_trailing_newline_is_not_a_valid_value(name, value):
    assert fields(good(**{name: value})) == [name]
